"""The HDF5 index: the store of record for hyperplanes, codes, embeddings and buckets.

Layout (format 1)::

    /                 attrs: format_version, model_sha256, bits, embedding_dim, class_names, source, ...
    /hasher/hyperplanes (bits, dim) float32, /hasher/center (dim,) float32
    /items/label      (N,) int16   known label of each gallery item, -1 when unknown
    /items/category   (N,) int16   the category library the item was filed under
    /items/images     (N, 28, 28) uint8  (Fashion-MNIST galleries)  or  /items/paths (N,) str (folders)
    /categories/<c>/ids, codes, embeddings (float16), bucket_prefix, bucket_start, bucket_count

Items inside a category are sorted by the first 16 bits of their code, so each bucket
(items sharing that code prefix, the paper's "same code, same library") is a slice.
Files are written to a temp file and renamed, and every dataset carries a Fletcher-32
checksum that HDF5 verifies on read.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .hashing import Hasher, check_bits

FORMAT_VERSION = 1
PREFIX_BITS = 16


class IndexStoreError(RuntimeError):
    """The index file is missing, corrupt, or does not belong to the model in use."""


@dataclass
class CategoryLibrary:
    """One category's hash library; rows are sorted by bucket (code prefix)."""

    ids: np.ndarray         # (n,) int64 gallery item ids
    codes: np.ndarray       # (n, bits/8) uint8
    embeddings: np.ndarray  # (n, dim) float16
    bucket_prefix: np.ndarray = field(default=None)  # (b,) uint32
    bucket_start: np.ndarray = field(default=None)   # (b,) int64
    bucket_count: np.ndarray = field(default=None)   # (b,) int64

    def __post_init__(self) -> None:
        if self.bucket_prefix is None:
            self._sort_into_buckets()

    def __len__(self) -> int:
        return len(self.ids)

    def _sort_into_buckets(self) -> None:
        prefix = code_prefix(self.codes)
        order = np.argsort(prefix, kind="stable")
        self.ids, self.codes, self.embeddings = self.ids[order], self.codes[order], self.embeddings[order]
        prefix = prefix[order]
        self.bucket_prefix, self.bucket_start, self.bucket_count = (
            a.astype(t) for a, t in zip(np.unique(prefix, return_index=True, return_counts=True),
                                        (np.uint32, np.int64, np.int64)))

    def bucket_of(self, code: np.ndarray) -> np.ndarray:
        """Ids of the items whose code prefix equals this code's (the paper's same-code library)."""
        key = code_prefix(code.reshape(1, -1))[0]
        i = np.searchsorted(self.bucket_prefix, key)
        if i == len(self.bucket_prefix) or self.bucket_prefix[i] != key:
            return self.ids[:0]
        return self.ids[self.bucket_start[i]: self.bucket_start[i] + self.bucket_count[i]]


def code_prefix(codes: np.ndarray) -> np.ndarray:
    """First PREFIX_BITS bits of each packed code as an integer (the bucket key)."""
    return (codes[:, 0].astype(np.uint32) << 8) | codes[:, 1]


@dataclass
class GalleryIndex:
    hasher: Hasher
    model_sha256: str
    class_names: list[str]
    categories: list[CategoryLibrary]
    labels: np.ndarray                 # (N,) int16, -1 = unknown
    item_category: np.ndarray          # (N,) int16
    images: np.ndarray | None = None   # (N, 28, 28) uint8
    paths: list[str] | None = None     # relative to root
    root: str | None = None
    source: str = "fashion-mnist"
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def bits(self) -> int:
        return self.hasher.bits


def _checked(group: h5py.Group, name: str, data: np.ndarray) -> None:
    group.create_dataset(name, data=data, fletcher32=True, chunks=True if data.size else None,
                         compression="lzf" if name == "images" else None)


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files that writers killed mid-write (their process is gone) left beside ``path``."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            tmp.unlink(missing_ok=True)


def write_index(index: GalleryIndex, path: str | Path) -> Path:
    """Write atomically: a crash or error mid-write leaves any existing file untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if Path("/proc/self").exists():  # Linux: we can tell a dead writer's leftovers from a live one's
        remove_stale_temp_files(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            _write_contents(f, index)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _write_contents(f: h5py.File, index: GalleryIndex) -> None:
    f.attrs.update({
        "format_version": FORMAT_VERSION, "model_sha256": index.model_sha256, "bits": index.bits,
        "embedding_dim": index.hasher.hyperplanes.shape[1], "class_names": json.dumps(index.class_names),
        "source": index.source, "root": index.root or "", "meta": json.dumps(index.meta),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    _checked(f.create_group("hasher"), "hyperplanes", index.hasher.hyperplanes.astype(np.float32))
    _checked(f["hasher"], "center", index.hasher.center.astype(np.float32))
    items = f.create_group("items")
    _checked(items, "label", index.labels.astype(np.int16))
    _checked(items, "category", index.item_category.astype(np.int16))
    if index.images is not None:
        _checked(items, "images", index.images.astype(np.uint8))
    if index.paths is not None:  # fixed-length UTF-8: HDF5 cannot checksum variable-length strings
        _checked(items, "paths", np.array([p.encode() for p in index.paths], dtype=np.bytes_))
    cats = f.create_group("categories")
    for c, lib in enumerate(index.categories):
        g = cats.create_group(str(c))
        for name in ("ids", "codes", "embeddings", "bucket_prefix", "bucket_start", "bucket_count"):
            _checked(g, name, getattr(lib, name))


def read_index(path: str | Path, model_sha256: str | None = None) -> GalleryIndex:
    """Load and verify; any problem becomes an IndexStoreError naming the fix."""
    path = Path(path)
    if not path.is_file():
        raise IndexStoreError(f"index not found: {path}. Build it with `python -m app index build --out {path}`")
    try:
        with h5py.File(path, "r") as f:
            index = _read_contents(f)
    except IndexStoreError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise IndexStoreError(f"index {path} is corrupt or incomplete ({exc}); rebuild it with "
                              f"`python -m app index build --out {path}`") from exc
    try:
        verify_structure(index)
    except ValueError as exc:
        raise IndexStoreError(f"index {path} failed verification: {exc}; rebuild it") from exc
    if model_sha256 is not None and index.model_sha256 != model_sha256:
        raise IndexStoreError(
            f"index {path} was built with model {index.model_sha256[:12]}, but the model in use is "
            f"{model_sha256[:12]}; rebuild it with `python -m app index build --out {path}`")
    return index


def _read_contents(f: h5py.File) -> GalleryIndex:
    version = int(f.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise IndexStoreError(f"index format version {version} is not supported (expected {FORMAT_VERSION}); rebuild it")
    hasher = Hasher(f["hasher/hyperplanes"][()], f["hasher/center"][()])
    if int(f.attrs["bits"]) != hasher.bits:
        raise ValueError(f"bits attribute {int(f.attrs['bits'])} disagrees with {hasher.bits} hyperplanes")
    check_bits(hasher.bits)
    categories = [CategoryLibrary(**{k: g[k][()] for k in g.keys()})
                  for _, g in sorted(f["categories"].items(), key=lambda kv: int(kv[0]))]
    items = f["items"]
    paths = [p.decode() if isinstance(p, bytes) else p for p in items["paths"][()]] if "paths" in items else None
    return GalleryIndex(
        hasher=hasher, model_sha256=str(f.attrs["model_sha256"]),
        class_names=json.loads(f.attrs["class_names"]), categories=categories,
        labels=items["label"][()], item_category=items["category"][()],
        images=items["images"][()] if "images" in items else None, paths=paths,
        root=str(f.attrs["root"]) or None, source=str(f.attrs["source"]),
        meta={**json.loads(f.attrs["meta"]), "created": str(f.attrs["created"])},
    )


def index_summary(index: GalleryIndex, path: Path | None = None) -> dict:
    """What `index info` and the health endpoint report."""
    return {
        "items": len(index), "bits": index.bits, "embedding_dim": int(index.hasher.hyperplanes.shape[1]),
        "source": index.source, "root": index.root, "model_sha256": index.model_sha256,
        "created": index.meta.get("created"), "file_mb": path.stat().st_size / 1e6 if path else None,
        "categories": [{"name": name, "items": len(lib), "buckets": len(lib.bucket_prefix),
                        "largest_bucket": int(lib.bucket_count.max()) if len(lib) else 0}
                       for name, lib in zip(index.class_names, index.categories)],
    }


def peek_source(path: str | Path) -> str | None:
    """The gallery source recorded in an index file, or None if it is absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs["source"])
    except (OSError, KeyError):
        return None


def verify_structure(index: GalleryIndex) -> None:
    """Shapes and cross-references agree; raises ValueError saying what does not."""
    n, bits, dim = len(index.labels), index.bits, index.hasher.hyperplanes.shape[1]
    if index.hasher.center.shape != (dim,):
        raise ValueError(f"center has shape {index.hasher.center.shape}, expected ({dim},)")
    if len(index.categories) != len(index.class_names):
        raise ValueError(f"{len(index.categories)} category libraries for {len(index.class_names)} class names")
    if index.item_category.shape != (n,):
        raise ValueError("items/category and items/label differ in length")
    if index.images is not None and index.images.shape[0] != n:
        raise ValueError(f"{index.images.shape[0]} images for {n} items")
    if index.paths is not None and len(index.paths) != n:
        raise ValueError(f"{len(index.paths)} paths for {n} items")
    seen = np.zeros(n, dtype=np.int32)
    for c, lib in enumerate(index.categories):
        m = len(lib.ids)
        if lib.codes.shape != (m, bits // 8) or lib.embeddings.shape != (m, dim):
            raise ValueError(f"category {c}: codes {lib.codes.shape} / embeddings {lib.embeddings.shape} "
                             f"do not fit {m} items, {bits} bits, {dim} dims")
        if m and (lib.ids.min() < 0 or lib.ids.max() >= n):
            raise ValueError(f"category {c}: item ids out of range")
        if m and np.any(index.item_category[lib.ids] != c):
            raise ValueError(f"category {c}: holds items filed under another category")
        if int(lib.bucket_count.sum()) != m or np.any(np.diff(lib.bucket_prefix.astype(np.int64)) <= 0):
            raise ValueError(f"category {c}: bucket table does not cover its items")
        np.add.at(seen, lib.ids, 1)  # unlike seen[ids] += 1, counts a repeated id each time
    if np.any(seen != 1):
        raise ValueError("every item must be in exactly one category library")


def verify_codes(index: GalleryIndex) -> None:
    """Deep check for `index verify`: stored codes equal the hash of stored embeddings (bar float16 ties)."""
    for c, lib in enumerate(index.categories):
        if not len(lib):
            continue
        fresh = index.hasher.hash(lib.embeddings.astype(np.float32))
        flipped = np.unpackbits(fresh ^ lib.codes, axis=1).sum(1)
        if np.mean(flipped > 2) > 0.01:
            raise ValueError(f"category {c}: {int((flipped > 2).sum())} codes do not match their embeddings")
