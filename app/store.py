"""The catalog store: one HDF5 file per catalog, the record of what was indexed and how.

Layout (format 2)::

    /                   attrs: format_version (the only attribute)
    /manifest           JSON: catalog name, model file and SHA-256, class names, source, bits, ...
    /hasher/hyperplanes (bits, dim) float32      /hasher/center (dim,) float32
    /items/id           (N,) int64     stable item ids (what URLs and the API name)
    /items/category     (N,) int16     the library an item is filed under, ascending:
                                       each category's library is one contiguous run of rows
    /items/label        (N,) int16     known label, -1 when unknown
    /items/code         (N, bits/8) uint8   packed LSH codes
    /items/embedding    (N, dim) float16
    /items/image        (N, h, w) uint8      (catalogs whose images live in the store) or
    /items/path         (N,) bytes           (catalogs of files, relative to the source root)

Everything, the manifest included, is a dataset with a Fletcher-32 checksum, so a flipped
byte anywhere is refused on read; nothing is kept in HDF5 attributes, which carry no
checksum. Files are built in memory and written atomically (app/files.py): a killed writer
leaves nothing behind, and an existing file is replaced in one rename.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .files import write_atomically
from .hashing import Hasher, check_bits

FORMAT_VERSION = 2
IMAGE_COLUMNS = ("image", "path")


class StoreError(RuntimeError):
    """The store file is missing, damaged, or does not belong to the model in use."""


@dataclass(frozen=True)
class Manifest:
    """What a store is: which catalog, made by which model, from which source."""

    catalog: str
    model_file: str           # file name inside the models folder, e.g. "photos.tflite"
    model_sha256: str
    class_names: tuple[str, ...]
    source: str               # "fashion-mnist", "photos" or "folder"
    root: str | None = None   # where a file catalog's paths start (relative to the repository when inside it)
    bits: int = 256
    embedding_dim: int = 0
    created: str = ""
    build: dict = field(default_factory=dict)  # how it was built: items/s, seconds, skipped files

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "class_names": list(self.class_names)})

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        missing = [k for k in ("catalog", "model_file", "model_sha256", "class_names", "source") if k not in data]
        if missing:
            raise ValueError(f"manifest lacks {', '.join(missing)}")
        data["class_names"] = tuple(data["class_names"])
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CatalogStore:
    """Items filed by category; category c's library is rows ``offsets[c]:offsets[c + 1]``."""

    manifest: Manifest
    hasher: Hasher
    ids: np.ndarray          # (N,) int64
    categories: np.ndarray   # (N,) int16, ascending
    labels: np.ndarray       # (N,) int16, -1 = unknown
    codes: np.ndarray        # (N, bits/8) uint8
    embeddings: np.ndarray   # (N, dim) float16
    images: np.ndarray | None = None       # (N, h, w) uint8
    paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        counts = np.bincount(self.categories.astype(np.int64), minlength=len(self.manifest.class_names))
        object.__setattr__(self, "offsets", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        object.__setattr__(self, "_by_id", np.argsort(self.ids, kind="stable"))

    offsets: np.ndarray = field(init=False, repr=False)
    _by_id: np.ndarray = field(init=False, repr=False)  # rows in ascending id order

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.manifest.class_names

    @property
    def bits(self) -> int:
        return self.hasher.bits

    def library(self, category: int) -> slice:
        """The rows of one category's hash library."""
        return slice(int(self.offsets[category]), int(self.offsets[category + 1]))

    def row_of(self, item_id: int) -> int:
        """The row holding an item id; KeyError when the catalog has no such item."""
        i = int(np.searchsorted(self.ids, item_id, sorter=self._by_id))
        if i == len(self.ids) or self.ids[self._by_id[i]] != item_id:
            raise KeyError(item_id)
        return int(self._by_id[i])


def assemble(manifest: Manifest, embeddings: np.ndarray, labels: np.ndarray, categories: np.ndarray,
             seed: int = 0, images: np.ndarray | None = None, paths: list[str] | None = None,
             ids: np.ndarray | None = None) -> CatalogStore:
    """Hash embeddings (centred on their mean) and order the items by category, ids kept stable."""
    embeddings = np.asarray(embeddings, np.float32)
    hasher = Hasher.create(embeddings.shape[1], manifest.bits, seed,
                           center=embeddings.mean(0) if len(embeddings) else None)
    ids = np.arange(len(embeddings), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    order = np.argsort(categories, kind="stable")
    manifest = Manifest(**{**asdict(manifest), "class_names": tuple(manifest.class_names),
                           "embedding_dim": int(embeddings.shape[1]),
                           "created": manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S")})
    return CatalogStore(
        manifest=manifest, hasher=hasher, ids=ids[order], categories=np.asarray(categories, np.int16)[order],
        labels=np.asarray(labels, np.int16)[order], codes=hasher.hash(embeddings)[order],
        embeddings=embeddings.astype(np.float16)[order],
        images=None if images is None else np.asarray(images, np.uint8)[order],
        paths=None if paths is None else tuple(paths[i] for i in order))


# ---------------------------------------------------------------- writing

def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    group.create_dataset(name, data=data, fletcher32=True, chunks=True if data.size else None,
                         compression="lzf" if name == "image" else None)


def _file_image(store: CatalogStore) -> bytes:
    """The whole HDF5 file, built in memory."""
    with h5py.File(f"fashion16-store-{id(store)}", "w", driver="core", backing_store=False) as f:
        f.attrs["format_version"] = FORMAT_VERSION
        _dataset(f, "manifest", np.frombuffer(store.manifest.to_json().encode(), np.uint8))
        hasher = f.create_group("hasher")
        _dataset(hasher, "hyperplanes", store.hasher.hyperplanes.astype(np.float32))
        _dataset(hasher, "center", store.hasher.center.astype(np.float32))
        items = f.create_group("items")
        for name, data in (("id", store.ids.astype(np.int64)), ("category", store.categories.astype(np.int16)),
                           ("label", store.labels.astype(np.int16)), ("code", store.codes),
                           ("embedding", store.embeddings.astype(np.float16))):
            _dataset(items, name, data)
        if store.images is not None:
            _dataset(items, "image", store.images.astype(np.uint8))
        if store.paths is not None:  # fixed-length UTF-8: HDF5 cannot checksum variable-length strings
            _dataset(items, "path", np.array([p.encode() for p in store.paths], dtype=np.bytes_))
        f.flush()
        return f.id.get_file_image()


def write_store(store: CatalogStore, path: str | Path, on_written: Callable[[], None] | None = None) -> Path:
    """Write atomically (app/files.py): a crash or error mid-write leaves any existing file untouched."""
    return write_atomically(path, _file_image(store), on_written)


# ---------------------------------------------------------------- reading

def rebuild_hint(path: Path, manifest: Manifest | None = None) -> str:
    catalog = manifest.catalog if manifest else path.stem.replace("_", "-")
    return f"rebuild it with `python -m app index build --catalog {catalog}`"


def read_store(path: str | Path, model_sha256: str | None = None) -> CatalogStore:
    """Load and verify; any problem becomes a StoreError naming the fix."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"catalog store not found: {path}; build it with "
                         f"`python -m app index build --catalog {path.stem.replace('_', '-')}`")
    try:
        with h5py.File(path, "r") as f:
            store = _read(f)
    except StoreError as exc:
        raise StoreError(f"{path}: {exc}; {rebuild_hint(path)}") from exc
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is damaged or incomplete ({_short(exc)}); {rebuild_hint(path)}") from exc
    try:
        verify_structure(store)
    except ValueError as exc:
        raise StoreError(f"{path} failed verification: {exc}; {rebuild_hint(path, store.manifest)}") from exc
    if model_sha256 is not None and store.manifest.model_sha256 != model_sha256:
        raise StoreError(f"{path} was built with model {store.manifest.model_sha256[:12]}, but "
                         f"{store.manifest.model_file} is {model_sha256[:12]}; {rebuild_hint(path, store.manifest)}")
    return store


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _read(f: h5py.File) -> CatalogStore:
    version = f.attrs.get("format_version", -1)
    if int(version) != FORMAT_VERSION:
        raise StoreError(f"store format {int(version)} is not supported (this version reads {FORMAT_VERSION})")
    if set(f.attrs.keys()) != {"format_version"}:
        raise StoreError(f"unexpected attributes {sorted(set(f.attrs.keys()) - {'format_version'})}")
    manifest = Manifest.from_json(f["manifest"][()].tobytes().decode())
    items = f["items"]
    paths = tuple(p.decode() for p in items["path"][()]) if "path" in items else None
    return CatalogStore(
        manifest=manifest, hasher=Hasher(f["hasher/hyperplanes"][()], f["hasher/center"][()]),
        ids=items["id"][()], categories=items["category"][()], labels=items["label"][()],
        codes=items["code"][()], embeddings=items["embedding"][()],
        images=items["image"][()] if "image" in items else None, paths=paths)


def peek_manifest(path: str | Path) -> Manifest | None:
    """A store's manifest without loading its arrays, or None if the file is absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return Manifest.from_json(f["manifest"][()].tobytes().decode())
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError):
        return None


def verify_structure(store: CatalogStore) -> None:
    """Shapes, order and cross-references agree with the manifest; raises ValueError saying what does not."""
    m, n = store.manifest, len(store.ids)
    check_bits(store.hasher.bits)
    dim = store.hasher.hyperplanes.shape[1]
    if m.bits != store.hasher.bits or m.embedding_dim != dim:
        raise ValueError(f"the manifest says {m.bits} bits / {m.embedding_dim} dims, the hasher has "
                         f"{store.hasher.bits} / {dim}")
    if store.hasher.center.shape != (dim,):
        raise ValueError(f"center has shape {store.hasher.center.shape}, expected ({dim},)")
    if not m.class_names or len(set(m.class_names)) != len(m.class_names):
        raise ValueError("class names are missing or repeated")
    for name, arr, shape in (("category", store.categories, (n,)), ("label", store.labels, (n,)),
                             ("code", store.codes, (n, m.bits // 8)), ("embedding", store.embeddings, (n, dim))):
        if arr.shape != shape:
            raise ValueError(f"items/{name} has shape {arr.shape}, expected {shape}")
    if store.images is not None and len(store.images) != n:
        raise ValueError(f"{len(store.images)} images for {n} items")
    if store.paths is not None and len(store.paths) != n:
        raise ValueError(f"{len(store.paths)} paths for {n} items")
    if (store.images is None) == (store.paths is None):
        raise ValueError("items need either images or paths, not both or neither")
    if n and (store.categories.min() < 0 or store.categories.max() >= len(m.class_names)):
        raise ValueError("an item is filed under a category that does not exist")
    if n and (np.any(np.diff(store.categories) < 0)):
        raise ValueError("items are not ordered by category")
    if n and (store.labels.min() < -1 or store.labels.max() >= len(m.class_names)):
        raise ValueError("an item has a label that does not exist")
    if len(np.unique(store.ids)) != n or (n and store.ids.min() < 0):
        raise ValueError("item ids are not unique non-negative numbers")
    if store.paths is not None and any(p.startswith("/") or ".." in p.split("/") for p in store.paths):
        raise ValueError("an item path leaves the catalog folder")


def verify_codes(store: CatalogStore) -> None:
    """Deep check for `index verify`: stored codes equal the hash of stored embeddings (bar float16 ties)."""
    if not len(store):
        return
    fresh = store.hasher.hash(store.embeddings.astype(np.float32))
    flipped = np.unpackbits(fresh ^ store.codes, axis=1).sum(1)
    if np.mean(flipped > 2) > 0.01:
        raise ValueError(f"{int((flipped > 2).sum())} codes do not match their embeddings")


def summary(store: CatalogStore, path: Path | None = None) -> dict:
    """What `index info` and the health endpoint report."""
    m = store.manifest
    return {
        "catalog": m.catalog, "items": len(store), "bits": store.bits, "embedding_dim": m.embedding_dim,
        "source": m.source, "root": m.root, "model": {"file": m.model_file, "sha256": m.model_sha256},
        "created": m.created, "file_mb": round(path.stat().st_size / 1e6, 2) if path else None,
        "categories": [{"name": name, "items": int(store.offsets[c + 1] - store.offsets[c])}
                       for c, name in enumerate(m.class_names)],
    }
