"""Indexing: pictures run through a model, hashed and filed into a catalog's store, with progress.

- ``build``: a catalog's whole source, as a new version replacing the old content. Items
  whose picture is unchanged (same path, same content hash) keep their ids; new or changed
  pictures get new ids, never used before.
- ``add``: only files that are new or changed since the last version are run through the
  model (with the store's own hyperplanes); a changed file's old item is removed.
- ``remove``: items by id or by path.
Each is one commit: a new version, or nothing at all.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import check_room
from .photo_dataset import image_files
from .progress import Progress
from .runtime import InferenceModel
from .settings import Settings, cpu_count
from .sources import FashionMNISTSource, FolderSource, recorded_root, resolve_root
from .stores import Manifest, NewItems, Snapshot, Store, StoreError


def file_by_category(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Known labels decide an item's library; the classifier files the rest."""
    return np.where(labels >= 0, labels, probs.argmax(1)).astype(np.int16)


def store_size_estimate(model: InferenceModel, source: FashionMNISTSource | FolderSource, bits: int) -> int:
    """About how many bytes the new segment of ``source`` will take (a little over: images uncompressed)."""
    per_item = 2 * model.embedding_dim + bits // 8 + 8 + 2 + 2 + 8  # embedding (float16), code, id, category, label, hash
    if isinstance(source, FashionMNISTSource):
        per_item += int(source.images[0].size) + 16  # the image, kept in the store, and its name
    else:
        per_item += max(len(f.relative_to(source.root).as_posix().encode()) for f in source.files)  # its path
    hasher = 4 * (bits + 1) * model.embedding_dim  # hyperplanes and centre, float32
    # the spool of the queued items and the segment written from it are on disk together at the end
    return int(2.1 * len(source) * per_item + hasher) + 2**20


def check_store_room(store: Store, model: InferenceModel, source: FashionMNISTSource | FolderSource,
                     bits: int) -> None:
    """CannotWrite now, not after minutes of indexing, if a store's folder cannot take the build (app/files.py)."""
    folder = getattr(store, "folder", None)  # stores on a server have no folder of ours to check
    if folder is not None:
        check_room(Path(folder) / "manifest.json", store_size_estimate(model, source, bits))


@dataclass
class IndexReport:
    """What one indexing command did: the summary a user reads at the end."""

    catalog: str
    version: int = 0
    items: int = 0                      # items in the new version
    embedded: int = 0                   # pictures run through the model
    kept: int = 0                       # items that kept their id (unchanged pictures)
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    filed_by_model: dict[str, dict[str, int]] = field(default_factory=dict)  # folder -> category -> photos
    items_per_s: float = 0.0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = []
        for folder, cats in sorted(self.filed_by_model.items()):
            how = ", ".join(f"{name} {n}" for name, n in sorted(cats.items(), key=lambda kv: -kv[1]))
            out.append(f"folder {folder}/ is not a category of the model: its {sum(cats.values())} photos were "
                       f"filed by the model's guess ({how})")
        for rel, why in self.skipped[:20]:
            out.append(f"skipped {rel}: {why}")
        if len(self.skipped) > 20:
            out.append(f"... and {len(self.skipped) - 20} more unreadable files")
        return out


def embed(model: InferenceModel, source: FashionMNISTSource | FolderSource, progress: Progress,
          batch_size: int = 256) -> Iterable[NewItems]:
    """The source's pictures through the model in batches, filed by folder name or the model's guess."""
    for batch in source.batches(model, batch_size):
        probs, emb = model(batch.inputs, batch_size)
        cats = file_by_category(batch.labels, probs)
        yield NewItems(emb, cats, batch.labels, batch.hashes, batch.paths, batch.images)
        progress.update(batch.attempted)
    progress.close()


def build(store: Store, model: InferenceModel, source: FashionMNISTSource | FolderSource, catalog: str,
          bits: int = 256, seed: int = 0, strict: bool = False) -> IndexReport:
    """The whole source as a new version of ``store``; unchanged pictures keep their ids."""
    report = IndexReport(catalog)
    if isinstance(source, FolderSource):
        unnamed = source.unnamed_folders(model.class_names)
        if strict and unnamed:
            raise ValueError("these folders are not categories of the model "
                             f"({', '.join(model.class_names)}): " + ", ".join(f"{f}/ ({n} photos)"
                                                                               for f, n in sorted(unnamed.items()))
                             + "; rename them or leave out --strict to file their photos by the model's guess")
    check_store_room(store, model, source, bits)  # before minutes of indexing, not after
    previous = _previous(store)
    keys = previous.keys() if previous is not None else {}
    manifest = Manifest(catalog=catalog, model_file=model.path.name, model_sha256=model.sha256,
                        class_names=model.class_names, source=source.kind,
                        root=recorded_root(source.root) if source.root else None, bits=bits)
    writer = store.rebuild(manifest, seed=seed, next_id=previous.next_id if previous is not None else 0)
    progress = Progress(len(source), f"indexing {catalog}", unit="images")
    kept_ids: list[int] = []
    try:
        for items in embed(model, source, progress):
            carried = [keys.get(p) for p in items.paths]
            same = np.array([c is not None and c[1] == h for c, h in zip(carried, items.hashes)], bool)
            if same.any():
                kept = _subset(items, np.flatnonzero(same))
                kept.ids = np.array([carried[i][0] for i in np.flatnonzero(same)], np.int64)
                kept_ids += writer.add(kept).tolist()
                report.kept += int(same.sum())
            if (~same).any():
                report.added += writer.add(_subset(items, np.flatnonzero(~same))).tolist()
            _note_unnamed(report, source, items, model)
            report.embedded += len(items)
        if not report.embedded:
            raise ValueError(f"no readable images in {source.root or source.kind}; nothing to index")
        report.items_per_s, report.seconds = round(progress.rate, 1), round(progress.elapsed, 2)
        report.version = writer.commit(build={"items_per_s": report.items_per_s, "seconds": report.seconds,
                                              "skipped": len(source.skipped), "runtime": model.runtime})
    except BaseException:
        writer.abort()
        raise
    report.removed = sorted({i for i, _ in keys.values()} - set(kept_ids))
    report.skipped = list(source.skipped)
    report.items = report.kept + len(report.added)
    return report


def add(store: Store, model: InferenceModel, paths: Sequence[str | Path]) -> IndexReport:
    """Files (or every picture under folders) into the catalog: only new or changed ones are embedded."""
    writer = store.writer()
    try:
        base: Snapshot = writer.base
        report = IndexReport(base.manifest.catalog)
        root = _root_of(base)
        files = _expand(paths, root)
        keys = base.keys()
        wanted = []
        for path in files:
            rel = path.relative_to(root).as_posix()
            if rel in keys and keys[rel][1] == _hash_of(path):
                report.kept += 1
            else:
                wanted.append(path)
        if wanted:
            source = FolderSource(root, files=wanted)
            check_store_room(store, model, source, base.hasher.bits)
            for items in embed(model, source, Progress(len(wanted), f"adding to {report.catalog}", unit="images")):
                replaced = [keys[p][0] for p in items.paths if p in keys]
                if replaced:
                    writer.remove(replaced)
                    report.removed += replaced
                report.added += writer.add(items).tolist()
                _note_unnamed(report, source, items, model)
                report.embedded += len(items)
            report.skipped = list(source.skipped)
        if report.added or report.removed:
            report.version = writer.commit()
        else:
            writer.abort()
            report.version = base.version
    except BaseException:
        writer.abort()
        raise
    report.items = len(store.snapshot())
    return report


def remove(store: Store, targets: Sequence[str]) -> IndexReport:
    """Items by id, or by path (a file, or every item under a folder); unknown ones refuse the whole change."""
    writer = store.writer()
    try:
        base: Snapshot = writer.base
        report = IndexReport(base.manifest.catalog)
        keys = base.keys()
        root = resolve_root(base.manifest.root) if base.manifest.root else None
        ids, unknown = [], []
        for target in targets:
            found = _match(target, keys, root, base)
            if found:
                ids += [i for i in found if i not in ids]
            else:
                unknown.append(target)
        if unknown:
            raise ValueError(f"catalog {report.catalog} has no item {', '.join(map(repr, unknown))} "
                             f"(give item ids or photo paths; nothing was removed)")
        writer.remove(ids)
        report.removed = ids
        report.version = writer.commit()
    except BaseException:
        writer.abort()
        raise
    report.items = len(store.snapshot())
    return report


def _match(target: str, keys: dict[str, tuple[int, str]], root: Path | None, base: Snapshot) -> list[int]:
    if target.isdigit():
        return [int(target)] if int(target) in base else []
    rel = target
    if root is not None:
        path = Path(target)
        try:
            rel = (path if path.is_absolute() else Path.cwd() / path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = target
    rel = rel.strip("/")
    if rel in keys:
        return [keys[rel][0]]
    prefix = rel + "/"
    return sorted(i for p, (i, _) in keys.items() if p.startswith(prefix))


def _previous(store: Store) -> Snapshot | None:
    if not store.exists():
        return None
    try:
        return store.snapshot()
    except StoreError as exc:
        print(f"{exc}\n(the old version cannot be read: every item gets a new id)", file=sys.stderr)
        return None


def _root_of(base: Snapshot) -> Path:
    if base.stores_images or not base.manifest.root:
        raise ValueError(f"catalog {base.manifest.catalog} keeps its own images ({base.manifest.source}); "
                         f"it grows only by a rebuild")
    return resolve_root(base.manifest.root)


def _expand(paths: Sequence[str | Path], root: Path) -> list[Path]:
    """Files, and the pictures under folders, each of which must be inside the catalog's folder."""
    files: list[Path] = []
    root = root.resolve()
    for given in paths:
        path = Path(given).resolve()
        if not path.exists():
            raise FileNotFoundError(f"{given}: no such file or folder")
        try:
            path.relative_to(root)
        except ValueError:
            raise ValueError(f"{given} is not inside the catalog's folder {root}: copy it there first, "
                             f"then add it") from None
        if path.is_dir():
            files += image_files(path)
        else:
            files.append(path)
    if not files:
        raise FileNotFoundError(f"no JPEG/PNG/WebP/GIF images in {', '.join(map(str, paths))}")
    return list(dict.fromkeys(files))


def _hash_of(path: Path) -> str:
    from .sources import content_hash

    try:
        return content_hash(path.read_bytes())
    except OSError:
        return ""


def _subset(items: NewItems, rows: np.ndarray) -> NewItems:
    return NewItems(items.embeddings[rows], np.asarray(items.categories)[rows], np.asarray(items.labels)[rows],
                    [items.hashes[i] for i in rows], [items.paths[i] for i in rows],
                    None if items.images is None else items.images[rows])


def _note_unnamed(report: IndexReport, source, items: NewItems, model: InferenceModel) -> None:
    """Photos in folders that name no category: which folder, filed under which of the model's guesses."""
    if not isinstance(source, FolderSource):
        return
    for path, label, cat in zip(items.paths, items.labels, items.categories):
        folder = Path(path).parent.as_posix()
        if label < 0 and folder != ".":
            counts = report.filed_by_model.setdefault(folder, {})
            name = model.class_names[int(cat)]
            counts[name] = counts.get(name, 0) + 1


def ensure_builtin(name: str, settings: Settings, bits: int = 256) -> tuple[str, bool]:
    """A built-in catalog's store, built (from its source, with its model) unless a matching one exists.

    Only built-in catalogs are ever rebuilt here: they can be remade from the repository at
    any time. A store that is missing, damaged, of an old format or made by another model
    is rebuilt; (store URI, whether it was built) is returned.
    """
    from .catalog import BUILTIN, catalog_store, check_model, model_path
    from .runtime import open_model
    from .sources import open_source

    spec = BUILTIN[name]
    store, model_file = catalog_store(settings, name), model_path(settings, spec.model)
    if not model_file.is_file():
        raise FileNotFoundError(f"model {model_file} is missing; train it with `python -m app train --catalog "
                                f"{name}`")
    model = open_model(model_file, threads=cpu_count())
    try:
        check_model(store.snapshot(), model, store)
        return store.uri, False
    except StoreError as exc:
        print(f"{exc}\nBuilding the {name} catalog's store at {store.uri} ...", file=sys.stderr, flush=True)
    build(store, model, open_source(spec.source), name, bits=bits)
    return store.uri, True


__all__ = ["IndexReport", "add", "build", "embed", "ensure_builtin", "file_by_category", "remove"]
