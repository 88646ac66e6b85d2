"""A store that lives in this process only: for tests, benchmarks and tuning (no file, same behaviour).

It keeps every version's parts in memory and makes versions exactly as the HDF5 store does
(same ids, codes, digests), so code tested on it behaves the same on disk.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from ..hashing import Hasher
from .arrays import ArraySnapshot, check_part, content_digest, part_digest
from .base import Manifest, NewItems, StoreError, check_name
from .changes import Changes, QueuedWriter


class MemoryWriter(QueuedWriter):
    def __init__(self, store: MemoryStore, changes: Changes, seed: int = 0, version: int | None = None):
        self.store, self.changes, self.seed, self.version = store, changes, seed, version

    def commit(self, build: dict | None = None) -> int:
        self._record_build(build)
        try:
            with self.store._lock:
                base = self.changes.base
                if base is not None and self.store._snapshot is not base:
                    raise StoreError(f"catalog {self.store.catalog} changed since this writer started; try again")
                hasher = self.changes.hasher(self.seed)
                manifest = self.changes.manifest.with_(embedding_dim=int(hasher.hyperplanes.shape[1]))
                part = self.changes.part(hasher)
                part.embeddings = np.array(part.embeddings)  # off the spool
                check_part(part, manifest, hasher)
                parts = ([] if base is None else base.parts) + ([part] if len(part) or len(part.removed) else [])
                current = self.store._snapshot.version if self.store._snapshot else 0
                version = current + 1 if self.version is None else self.version
                if version <= current:
                    raise StoreError(f"{self.store.uri} is at version {current} already; cannot write {version}")
                digest = content_digest(manifest, hasher, version, self.changes.next_id,
                                        [part_digest(p) for p in parts])
                self.store._snapshot = ArraySnapshot(manifest, hasher, parts, version, self.changes.next_id, digest,
                                                     engine=self.store.engine)
                return version
        finally:
            self.changes.close()

    def abort(self) -> None:
        self.changes.close()


class MemoryStore:
    """``memory:NAME``: versions held in this process."""

    def __init__(self, catalog: str, engine: str = "auto"):
        self.catalog, self.engine = check_name(catalog), engine
        self.uri = f"memory:{catalog}"
        self._snapshot: ArraySnapshot | None = None
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return self._snapshot is not None

    def version(self) -> int | None:
        return None if self._snapshot is None else self._snapshot.version

    def snapshot(self) -> ArraySnapshot:
        if self._snapshot is None:
            raise StoreError(f"catalog {self.catalog} has no items yet (memory store)")
        return self._snapshot

    def writer(self) -> MemoryWriter:
        base = self.snapshot()
        return MemoryWriter(self, Changes(base.manifest, base, base.next_id))

    def rebuild(self, manifest: Manifest, seed: int = 0, next_id: int = 0, hasher: Hasher | None = None,
                version: int | None = None) -> MemoryWriter:
        if manifest.catalog != self.catalog:
            raise StoreError(f"this store holds catalog {self.catalog}, not {manifest.catalog}")
        if self._snapshot is not None:
            next_id = max(next_id, self._snapshot.next_id)
        manifest = manifest.with_(seed=seed, created=manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S"))
        return MemoryWriter(self, Changes(manifest, None, next_id, fixed_hasher=hasher), seed, version)

    def describe(self) -> str:
        return f"{self.uri}: in this process only (tests, benchmarks)"


def memory_store(manifest: Manifest, new: NewItems, seed: int = 0) -> ArraySnapshot:
    """A one-version in-memory catalog of ``new``: what tests, benchmarks and tuning search."""
    store = MemoryStore(manifest.catalog)
    writer = store.rebuild(manifest, seed=seed)
    writer.add(new)
    writer.commit()
    return store.snapshot()


def labelled_store(name: str, class_names: tuple[str, ...], embeddings: np.ndarray, labels: np.ndarray,
                   paths: Sequence[str] | None = None) -> ArraySnapshot:
    """Model outputs of known-category photos as an in-memory catalog, each filed under its label; item ids are
    the rows (0 .. n-1), so results index the caller's arrays. What tuning and choosing on held-out photos search."""
    n = len(embeddings)
    manifest = Manifest(catalog=name, model_file="-", model_sha256="-", class_names=tuple(class_names),
                        source="photos")
    return memory_store(manifest, NewItems(embeddings, labels, labels, ["0" * 16] * n,
                                           list(paths) if paths is not None else [f"gallery/{i}" for i in range(n)]))
