"""Indexing: a source run through a model once, hashed and filed into a catalog store, with progress."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .files import check_room
from .progress import Progress
from .runtime import InferenceModel
from .settings import Settings, cpu_count
from .sources import FashionMNISTSource, FolderSource, recorded_root
from .store import CatalogStore, Manifest, assemble


def file_by_category(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Known labels decide an item's library; the classifier files the rest."""
    return np.where(labels >= 0, labels, probs.argmax(1)).astype(np.int16)


def store_size_estimate(model: InferenceModel, source: FashionMNISTSource | FolderSource, bits: int) -> int:
    """About how many bytes the store of ``source`` will take (a little over: images counted uncompressed)."""
    per_item = 2 * model.embedding_dim + bits // 8 + 8 + 2 + 2  # embedding (float16), code, id, category, label
    if isinstance(source, FashionMNISTSource):
        per_item += int(source.images[0].size)  # the image, kept in the store
    else:
        per_item += max(len(f.relative_to(source.root).as_posix().encode()) for f in source.files)  # its path
    hasher = 4 * (bits + 1) * model.embedding_dim  # hyperplanes and centre, float32
    return int(1.05 * (len(source) * per_item + hasher)) + 2**20  # HDF5's chunks, checksums and headers


def check_store_room(path: Path, model: InferenceModel, source: FashionMNISTSource | FolderSource, bits: int) -> None:
    """CannotWrite now, not after indexing, if ``path``'s folder cannot take the store (app/files.py)."""
    check_room(path, store_size_estimate(model, source, bits))


def build_store(model: InferenceModel, source: FashionMNISTSource | FolderSource, catalog: str, bits: int = 256,
                seed: int = 0, batch_size: int = 256) -> CatalogStore:
    """Every item of ``source`` through ``model``; the store is returned, not yet written."""
    progress = Progress(len(source), f"indexing {catalog}", unit="images")
    probs, embs, labels, images, paths = [], [], [], [], []
    for batch in source.batches(model, batch_size):
        p, e = model(batch.inputs, batch_size)
        probs.append(p)
        embs.append(e)
        labels.append(batch.labels)
        if batch.images is not None:
            images.append(batch.images)
        if batch.paths is not None:
            paths.extend(batch.paths)
        progress.update(batch.attempted)
    progress.close()
    labels_all = np.concatenate(labels)
    if not len(labels_all):
        raise ValueError(f"no readable images in {source.root or source.kind}; nothing to index")
    manifest = Manifest(
        catalog=catalog, model_file=model.path.name, model_sha256=model.sha256, class_names=model.class_names,
        source=source.kind, root=recorded_root(source.root) if source.root else None, bits=bits,
        build={"items_per_s": round(progress.rate, 1), "seconds": round(progress.elapsed, 2),
               "skipped": len(source.skipped), "runtime": model.runtime})
    return assemble(manifest, np.concatenate(embs), labels_all, file_by_category(labels_all, np.concatenate(probs)),
                    seed=seed, images=np.concatenate(images) if images else None, paths=paths or None)


def ensure_builtin(name: str, settings: Settings, bits: int = 256) -> tuple[Path, bool]:
    """A built-in catalog's store, built (from its source, with its model) unless a matching one exists.

    Only built-in catalogs are ever rebuilt here: they can be remade from the repository at
    any time. A store that is missing, damaged, of an old format or made by another model
    is replaced; (path, whether it was built) is returned.
    """
    from .catalog import BUILTIN, model_path, store_path
    from .files import file_sha256
    from .runtime import open_model
    from .sources import open_source
    from .store import StoreError, read_store, write_store

    spec = BUILTIN[name]
    path, model_file = store_path(settings, name), model_path(settings, spec.model)
    if not model_file.is_file():
        raise FileNotFoundError(f"model {model_file} is missing; train it with `python -m app train --catalog "
                                f"{name}`")
    try:
        read_store(path, model_sha256=file_sha256(model_file))
        return path, False
    except StoreError as exc:
        print(f"{exc}\nBuilding the {name} catalog's store at {path} ...", file=sys.stderr, flush=True)
    model = open_model(model_file, threads=cpu_count())
    source = open_source(spec.source)
    check_store_room(path, model, source, bits)
    write_store(build_store(model, source, name, bits=bits), path)
    return path, True
