"""Changing a served catalog from uploaded photos: what the admin API does, apart from HTTP.

An uploaded photo is checked like a search upload, kept in the catalog's uploads folder
under its content hash (so sending it twice keeps one copy and one item), run through the
catalog's model and added in one commit: a new version, seen by this worker at once and by
the others within ``FASHION16_RELOAD_SECONDS``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .catalog import UPLOADS_PREFIX, Catalog
from .files import write_atomically
from .imaging.decode import decode
from .indexer import file_by_category
from .sources import content_hash, label_of_folder
from .stores import NewItems

SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}


@dataclass
class Added:
    id: int
    category: int
    hash: str
    path: str
    existing: bool  # the same photo was in the catalog already


def category_of(catalog: Catalog, name: str | None) -> int:
    """The category a client names (as folder names are read: case, spaces, a plural "s" ignored); -1 for none."""
    if not name:
        return -1
    label = label_of_folder(name, catalog.class_names)
    if label < 0:
        raise ValueError(f"{name!r} is not a category of this catalog; the categories are "
                         f"{', '.join(catalog.class_names)}")
    return label


def add_photos(catalog: Catalog, photos: Sequence[bytes], category: str | None, max_pixels: int) -> tuple[int, list[Added]]:
    """Add photos to a catalog of photo files; returns (new version, one record per photo)."""
    if catalog.stores_images:
        raise ValueError(f"the {catalog.name} catalog keeps its own images; it grows only by a rebuild")
    label = category_of(catalog, category)
    pictures = [decode(data, max_pixels) for data in photos]  # every photo checked before anything is kept
    writer = catalog.store.writer()
    try:
        keys = writer.base.keys()
        out: list[Added] = []
        new_rows, new_paths, new_hashes = [], [], []
        for i, (data, picture) in enumerate(zip(photos, pictures)):
            digest = content_hash(data)
            path = f"{UPLOADS_PREFIX}{digest}{SUFFIXES.get(picture.format or '', '.jpg')}"
            if path in keys:
                item = writer.base.items([keys[path][0]])
                out.append(Added(int(item.ids[0]), int(item.categories[0]), digest, path, True))
                continue
            file = catalog.file_of(path)
            if not file.exists():
                write_atomically(file, data)
            new_rows.append(i)
            new_paths.append(path)
            new_hashes.append(digest)
        version = writer.base.version
        if new_rows:
            model = catalog.model
            probs, emb = model(np.stack([model.prepare(pictures[i]) for i in new_rows]))
            labels = np.full(len(new_rows), label, np.int16)
            categories = file_by_category(labels, probs)
            ids = writer.add(NewItems(emb, categories, labels, new_hashes, new_paths))
            version = writer.commit()
            for item_id, cat, digest, path in zip(ids, categories, new_hashes, new_paths):
                out.append(Added(int(item_id), int(cat), digest, path, False))
        else:
            writer.abort()
        return version, out
    except BaseException:
        writer.abort()
        raise


def remove_item(catalog: Catalog, item_id: int) -> int:
    """Remove one item; returns the new version. KeyError when the catalog has no such item."""
    writer = catalog.store.writer()
    try:
        writer.remove([item_id])
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


__all__ = ["Added", "add_photos", "remove_item"]
