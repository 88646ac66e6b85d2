"""What a writer has queued before its commit: new items (spooled, so memory stays bounded) and removals.

Ids are given here: new items get ``next_id``, ``next_id + 1``, ...; a rebuild may carry
ids over from the version it replaces. An id is never given twice. Codes are computed at
commit from the float16 embeddings the store keeps, so stored codes always match stored
embeddings exactly.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..hashing import Hasher
from .arrays import Part, encode_paths, hash_bytes, read_rows
from .base import HASH_BYTES, Manifest, NewItems, Snapshot

EMBEDDING_DTYPE = np.float16
CHUNK_ROWS = 16_384


class Spool:
    """Row-aligned columns appended batch by batch: in memory, or to raw files in a folder (bounded memory)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix=f".spool-{os.getpid()}-", dir=folder)) if folder is not None else None
        self.rows = 0
        self._lists: dict[str, list[np.ndarray]] = {}
        self._shapes: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self.paths: list[str] = []

    def append(self, name: str, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        dtype, tail = self._shapes.setdefault(name, (arr.dtype, arr.shape[1:]))
        if arr.dtype != dtype or arr.shape[1:] != tail:
            raise ValueError(f"{name}: a batch of shape {arr.shape[1:]} {arr.dtype} after {tail} {dtype}")
        if self.folder is None:
            self._lists.setdefault(name, []).append(arr.copy())
        else:
            with open(self.folder / name, "ab") as f:
                arr.tofile(f)

    def column(self, name: str) -> np.ndarray | None:
        """The whole column (a read-only memory map when spooled to disk); None if never appended."""
        if name not in self._shapes:
            return None
        dtype, tail = self._shapes[name]
        if self.folder is None:
            return np.concatenate(self._lists[name])
        if not self.rows:
            return np.zeros((0, *tail), dtype)
        return np.memmap(self.folder / name, dtype=dtype, mode="r", shape=(self.rows, *tail))

    def close(self) -> None:
        self._lists.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class Changes:
    """Items added and ids removed on top of ``base`` (None: a rebuild, replacing everything)."""

    def __init__(self, manifest: Manifest, base: Snapshot | None, next_id: int, spool_dir: Path | None = None,
                 fixed_hasher: Hasher | None = None):
        self.manifest, self.base, self.next_id = manifest, base, next_id
        self.fixed_hasher = fixed_hasher  # a compaction keeps the hyperplanes and centre of what it rewrites
        self.spool = Spool(spool_dir)
        self.removed: list[int] = []
        self._given: set[int] = set()
        self._keeps_images: bool | None = None if base is None else base.stores_images

    def __len__(self) -> int:
        return self.spool.rows

    @property
    def empty(self) -> bool:
        return not self.spool.rows and not self.removed

    def add(self, items: NewItems) -> np.ndarray:
        n = len(items)
        emb = np.asarray(items.embeddings, np.float32)
        dim = self.manifest.embedding_dim or (self.base.hasher.hyperplanes.shape[1] if self.base else emb.shape[-1])
        if emb.ndim != 2 or emb.shape[1] != dim:
            raise ValueError(f"embeddings must be (n, {dim}), got {emb.shape}")
        if not np.all(np.isfinite(emb)):
            raise ValueError("an embedding is not finite")
        cats, labels = np.asarray(items.categories, np.int64), np.asarray(items.labels, np.int64)
        ncat = len(self.manifest.class_names)
        if cats.shape != (n,) or labels.shape != (n,) or len(items.hashes) != n:
            raise ValueError("categories, labels and hashes must have one entry per item")
        if n and (cats.min() < 0 or cats.max() >= ncat or labels.min() < -1 or labels.max() >= ncat):
            raise ValueError(f"categories must be 0-{ncat - 1} and labels -1-{ncat - 1}")
        keeps_images = items.images is not None
        if self._keeps_images is not None and keeps_images != self._keeps_images:
            raise ValueError("this catalog keeps " + ("its images" if self._keeps_images else "photo files, not images"))
        self._keeps_images = keeps_images
        if items.paths is None or len(items.paths) != n:
            raise ValueError("one path per item")
        for p in items.paths:
            if not p or p.startswith("/") or ".." in p.split("/"):
                raise ValueError(f"an item path must stay inside the catalog folder: {p!r}")
        ids = self._ids_for(items.ids, n)
        self.spool.append("embedding", emb.astype(EMBEDDING_DTYPE))
        self.spool.append("category", cats.astype(np.int16))
        self.spool.append("label", labels.astype(np.int16))
        self.spool.append("hash", hash_bytes(items.hashes) if n else np.zeros((0, HASH_BYTES), np.uint8))
        self.spool.append("id", ids)
        if keeps_images:
            self.spool.append("image", np.asarray(items.images, np.uint8))
        self.spool.paths.extend(items.paths)
        self.spool.rows += n
        return ids

    def _ids_for(self, given: np.ndarray | None, n: int) -> np.ndarray:
        if given is None:
            ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
            self.next_id += n
        else:
            ids = np.asarray(given, np.int64).reshape(-1)
            if len(ids) != n:
                raise ValueError("one id per item")
            if self.base is not None:
                raise ValueError("ids are given only by a rebuild; an added item gets a new id")
            if n and (ids.min() < 0 or ids.max() >= self.next_id):
                raise ValueError(f"carried-over ids must be below next_id {self.next_id}")
        if len(np.unique(ids)) != n or self._given.intersection(ids.tolist()):
            raise ValueError("an id was given twice")
        self._given.update(ids.tolist())
        return ids

    def remove(self, ids: Sequence[int]) -> None:
        if self.base is None:
            raise ValueError("a rebuild replaces everything; there is nothing to remove")
        for i in ids:
            if int(i) not in self.base or int(i) in self.removed:
                raise KeyError(int(i))
            self.removed.append(int(i))

    def hasher(self, seed: int) -> Hasher:
        """The base's hyperplanes, or for a rebuild new ones centred on the new items' mean."""
        if self.base is not None:
            return self.base.hasher
        if self.fixed_hasher is not None:
            return self.fixed_hasher
        emb = self.spool.column("embedding")
        dim = self.manifest.embedding_dim or (0 if emb is None else emb.shape[1])
        if emb is None or not len(emb):
            raise ValueError("nothing to build: no items were added")
        total = np.zeros(dim, np.float64)
        for chunk in self.chunks(emb):
            total += chunk.astype(np.float64).sum(0)
        return Hasher.create(dim, self.manifest.bits, seed, center=(total / len(emb)).astype(np.float32))

    @staticmethod
    def chunks(arr: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, len(arr), CHUNK_ROWS):
            yield read_rows(arr, start, start + CHUNK_ROWS)

    def codes(self, hasher: Hasher) -> np.ndarray:
        emb = self.spool.column("embedding")
        if emb is None:
            return np.zeros((0, hasher.code_bytes), np.uint8)
        return np.concatenate([hasher.hash(c.astype(np.float32)) for c in self.chunks(emb)] or
                              [np.zeros((0, hasher.code_bytes), np.uint8)])

    def part(self, hasher: Hasher) -> Part:
        """The queued changes as one part (columns may be memory maps of the spool)."""
        dim = hasher.hyperplanes.shape[1]
        col = self.spool.column
        empty = {"id": np.zeros(0, np.int64), "category": np.zeros(0, np.int16), "label": np.zeros(0, np.int16),
                 "embedding": np.zeros((0, dim), EMBEDDING_DTYPE), "hash": np.zeros((0, HASH_BYTES), np.uint8)}
        get = {name: (col(name) if col(name) is not None else e) for name, e in empty.items()}
        keeps_images = self._keeps_images
        return Part(ids=np.asarray(get["id"]), categories=np.asarray(get["category"]),
                    labels=np.asarray(get["label"]), codes=self.codes(hasher), embeddings=get["embedding"],
                    hashes=np.asarray(get["hash"]),
                    paths=encode_paths(self.spool.paths),
                    images=col("image") if keeps_images else None,
                    removed=np.array(sorted(self.removed), np.int64))

    def close(self) -> None:
        self.spool.close()


class QueuedWriter:
    """What every store's writer shares: changes queue in ``self.changes`` (on local disk) until the backend's
    ``commit`` writes them as one new version."""

    changes: Changes

    @property
    def base(self) -> Snapshot | None:
        """The version this writer started from (None for a rebuild)."""
        return self.changes.base

    def add(self, items: NewItems) -> np.ndarray:
        return self.changes.add(items)

    def remove(self, ids: Sequence[int]) -> None:
        self.changes.remove(ids)

    def _record_build(self, build: dict | None) -> None:
        """A build's description (source, counts) goes into the new version's manifest."""
        if build is not None:
            self.changes.manifest = self.changes.manifest.with_(build=build)
