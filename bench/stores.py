"""The catalog stores the HTTP sections serve.

Full and quick runs serve the real built-in catalogs (``index_store/``, built by
``app.indexer.ensure_builtin`` when missing or stale, as ``python -m app index ensure``
does), so memory and latency are those of production. Tests serve small stores written
to a temporary folder: the Fashion-MNIST workload's gallery and a few photos per category.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from app.catalog import BUILTIN, catalog_store, model_path
from app.indexer import build, ensure_builtin
from app.photo_dataset import load_photos
from app.runtime import LiteRTModel
from app.settings import Settings, cpu_count
from app.sources import FolderSource

from .profile import TABLE_BITS, Profile
from .workload import Workload


def builtin_stores(settings: Settings) -> Settings:
    """The built-in catalogs' stores in the configured store folder, built if absent or stale."""
    for name in BUILTIN:
        ensure_builtin(name, settings, bits=TABLE_BITS)
    return settings


def small_stores(settings: Settings, folder: Path, work: Workload, photos_per_category: int) -> Settings:
    """Both built-in catalogs, small, in ``folder``: the workload's gallery and the first training photos."""
    small = settings.with_(store_dir=folder)
    work.write(catalog_store(small, "fashion-mnist"), TABLE_BITS)
    photos = load_photos("train")
    keep = np.concatenate([np.flatnonzero(photos.labels == c)[:photos_per_category]
                           for c in np.unique(photos.labels)])
    source = FolderSource(photos.root, kind="photos", files=[photos.root / photos.paths[i] for i in keep])
    model = LiteRTModel(model_path(settings, BUILTIN["photos"].model), threads=cpu_count())
    build(catalog_store(small, "photos"), model, source, "photos", bits=TABLE_BITS)
    return small


def served_stores(settings: Settings, profile: Profile, folder: Path, work: Workload | None) -> Settings:
    """Settings whose store folder holds both built-in catalogs, as the profile asks."""
    if profile.builtin_stores:
        return builtin_stores(settings)
    if work is None:
        raise RuntimeError("small stores are made from the Fashion-MNIST workload, which failed to load")
    return small_stores(settings, folder, work, profile.small_store_photos)
