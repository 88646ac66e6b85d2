"""Copying a catalog between stores of any kind (HDF5, Milvus Lite, a Milvus server), then proving the copy.

The copy keeps what makes it the same catalog: item ids, ``next_id``, the version number,
the manifest and the hyperplanes with their centre (so every code is the same). It streams
a few thousand items at a time (memory bounded by the batch), writes them as one new base
in the destination, and then reads both stores back side by side, item by item; any
difference is an error. The destination must be empty: a migration never merges.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import NewItems, Snapshot, Store, StoreError

BATCH = 4_096


def images_of(snapshot: Snapshot, ids: Sequence[int]) -> np.ndarray:
    """Store-held images of these items (one call where the store can, else one per item)."""
    if hasattr(snapshot, "images"):
        return snapshot.images(ids)
    return np.stack([snapshot.image(int(i)) for i in ids])


def migrate(source: Store, dest: Store, batch: int = BATCH) -> Snapshot:
    """``source``'s latest version copied into the empty ``dest``; returns the copy, checked item by item."""
    if source.uri == dest.uri:
        raise ValueError(f"the source and the destination are the same store ({source.uri})")
    snap = source.snapshot()
    existing = dest.version()
    if existing is not None:
        raise StoreError(f"{dest.uri} already holds catalog {dest.catalog} (version {existing}); a migration "
                         f"copies into an empty store only")
    writer = dest.rebuild(snap.manifest, seed=snap.manifest.seed, next_id=snap.next_id, hasher=snap.hasher,
                          version=snap.version)
    try:
        ids = snap.ids()
        for start in range(0, len(ids), batch):
            got = snap.items(ids[start:start + batch])
            images = images_of(snap, got.ids) if snap.stores_images else None
            writer.add(NewItems(got.embeddings, got.categories, got.labels, got.hashes, got.paths, images,
                                ids=got.ids))
        writer.commit(build=snap.manifest.build)
    except BaseException:
        writer.abort()
        raise
    copy = dest.snapshot()
    compare(snap, copy, batch)
    return copy


def compare(a: Snapshot, b: Snapshot, batch: int = BATCH) -> None:
    """StoreError unless two snapshots hold the same catalog: identity, hyperplanes, counts and every item."""
    where = f"the copy in {getattr(b, 'uri', 'the destination')}"
    same = [("version", a.version, b.version), ("next id", a.next_id, b.next_id),
            ("manifest", a.manifest.to_dict(), b.manifest.to_dict())]
    for what, x, y in same:
        if x != y:
            raise StoreError(f"{where} differs from its source: {what} {y!r} instead of {x!r}")
    if not (np.array_equal(a.hasher.hyperplanes, b.hasher.hyperplanes) and
            np.array_equal(a.hasher.center, b.hasher.center)):
        raise StoreError(f"{where} differs from its source: its hyperplanes")
    if not np.array_equal(a.counts(), b.counts()) or not np.array_equal(a.ids(), b.ids()):
        raise StoreError(f"{where} differs from its source: its items per category or ids")
    ids = a.ids()
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        x, y = a.items(chunk), b.items(chunk)
        if not (np.array_equal(x.categories, y.categories) and np.array_equal(x.labels, y.labels)
                and np.array_equal(x.embeddings, y.embeddings) and x.hashes == y.hashes and x.paths == y.paths):
            raise StoreError(f"{where} differs from its source among items {chunk[0]}-{chunk[-1]}")
        if a.stores_images and not np.array_equal(images_of(a, chunk), images_of(b, chunk)):
            raise StoreError(f"{where} differs from its source: the images of items {chunk[0]}-{chunk[-1]}")
