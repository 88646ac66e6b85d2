"""Building small real catalogs on any store backend, for the tests that search them.

Every backend the project has runs here: HDF5 folders (real files), memory, and Milvus
when its optional requirements are installed (requirements-milvus.txt): a Milvus Lite file
and the local Milvus server that the ``milvus`` package starts, both shared by the whole
session (conftest.py), each store under its own collection prefix. Items get ids 0, 1,
2, ... in the order given (a fresh store numbers from 0), so tests can name them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from app.catalog import Catalog
from app.search import SearchEngine, SoftRouting
from app.stores import Hdf5Store, Manifest, MemoryStore, NewItems, Store, open_store

HAS_LITE = all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite"))
HAS_SERVER = HAS_LITE and importlib.util.find_spec("milvus") is not None
MILVUS_BACKENDS = ("milvus-lite",) * HAS_LITE + ("milvus",) * HAS_SERVER
BACKENDS = ("hdf5", "memory", *(pytest.param(b, marks=pytest.mark.milvus) for b in MILVUS_BACKENDS))
PLACES: dict[str, str] = {}  # Milvus backend -> the session's base URI (conftest: milvus_lite_place, milvus_place)
_prefixes = itertools.count()


def use_backend(request: pytest.FixtureRequest, backend: str) -> str:
    """``backend``, its Milvus started first when it is one (session fixtures: paid once, only when needed)."""
    if backend in MILVUS_BACKENDS:
        request.getfixturevalue("milvus_place" if backend == "milvus" else "milvus_lite_place")
    return backend


def new_store(backend: str, name: str, folder: Path, engine: str = "auto") -> Store:
    """An empty store of ``backend`` for catalog ``name`` (files under ``folder``; Milvus: a fresh prefix)."""
    if backend == "hdf5":
        return Hdf5Store(folder / name, name, engine=engine)
    if backend == "memory":
        return MemoryStore(name, engine=engine)
    if backend in MILVUS_BACKENDS:
        return open_store(f"{PLACES[backend]}/t{os.getpid()}_{next(_prefixes)}", name)
    raise ValueError(backend)


def item_hashes(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest()[:16] for i in range(n)]


def fill(store: Store, model, emb: np.ndarray, labels: np.ndarray, categories: np.ndarray,
         images: np.ndarray | None = None, paths: list[str] | None = None, root: str | None = None) -> None:
    """One version holding these items (ids 0..n-1 on a fresh store)."""
    n = len(emb)
    manifest = Manifest(catalog=store.catalog, model_file=model.path.name, model_sha256=model.sha256,
                        class_names=model.class_names, source="fashion-mnist" if images is not None else "folder",
                        root=root)
    writer = store.rebuild(manifest)
    writer.add(NewItems(np.asarray(emb, np.float32), np.asarray(categories), np.asarray(labels), item_hashes(n),
                        paths or [f"train/{i}" for i in range(n)], images))
    writer.commit()


def catalog_of(model, store: Store, emb: np.ndarray, labels: np.ndarray, categories: np.ndarray,
               images: np.ndarray | None = None, candidates: int = 512, soft: SoftRouting = SoftRouting(),
               uploads: Path = Path("/nonexistent")) -> Catalog:
    """A catalog over a freshly filled store; ``candidates`` beyond the catalog's size keep every item."""
    fill(store, model, emb, labels, categories,
         images=np.zeros((len(emb), 28, 28), np.uint8) if images is None else images)
    catalog = Catalog(store.catalog, model, store, store.snapshot(), uploads)
    catalog.engine = SearchEngine(candidates, soft)
    return catalog


def copy_catalog(source: Store, dest: Store, ids: np.ndarray | None = None, **manifest_changes) -> Store:
    """``source``'s latest items (or those ``ids``), ids and all, as a new store (its manifest changed as given)."""
    snap = source.snapshot()
    got = snap.items(snap.ids() if ids is None else ids)
    writer = dest.rebuild(snap.manifest.with_(**{"catalog": dest.catalog, **manifest_changes}),
                          next_id=snap.next_id)
    images = np.stack([snap.image(int(i)) for i in got.ids]) if snap.stores_images else None
    writer.add(NewItems(got.embeddings, got.categories, got.labels, got.hashes, got.paths, images, ids=got.ids))
    writer.commit()
    return dest
