"""Catalog stores behind one interface (app/stores/base.py): HDF5 folders (default), memory, Milvus.

A store is named by a URI: a plain path or ``hdf5:PATH`` (a catalog's folder),
``memory:NAME`` (this process only), ``milvus-lite:PATH.db`` or ``milvus://HOST:PORT[/collection]``.
"""
from __future__ import annotations

from pathlib import Path

from .arrays import ArraySnapshot
from .base import NAME_RULE, Items, Manifest, NewItems, Snapshot, Store, StoreError, Writer, check_name
from .hdf5 import Hdf5Store
from .memory import MemoryStore, memory_store

__all__ = ["NAME_RULE", "ArraySnapshot", "Hdf5Store", "Items", "Manifest", "MemoryStore", "NewItems", "Snapshot",
           "Store", "StoreError", "Writer", "check_name", "memory_store", "open_store"]


def open_store(uri: str | Path, catalog: str | None = None) -> Store:
    """The store a URI names; ``catalog`` is the catalog it must hold (checked when it is read)."""
    text = str(uri)
    scheme, sep, rest = text.partition(":")
    if not sep or len(scheme) == 1 or "/" in scheme:  # a plain path (C:\\ or ./a:b are paths too)
        return Hdf5Store(Path(text), catalog)
    if scheme == "hdf5":
        return Hdf5Store(Path(rest), catalog)
    if scheme == "memory":
        return MemoryStore(catalog or rest)
    if scheme in ("milvus", "milvus-lite"):
        from .milvus import open_milvus  # optional: requirements-milvus.txt

        return open_milvus(text, catalog)
    raise ValueError(f"unknown store {text!r}: use a folder, hdf5:PATH, milvus-lite:PATH.db or "
                     f"milvus://HOST:PORT[/COLLECTION]")
