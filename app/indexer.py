"""Building a gallery index: features, codes and per-category libraries, with progress."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import CLASS_NAMES
from .gallery import FashionMNISTGallery, FolderGallery
from .hashing import Hasher
from .index_store import CategoryLibrary, GalleryIndex, IndexStoreError, peek_source, read_index, write_index
from .model import Embedder
from .progress import Progress


def open_gallery(spec: str) -> FashionMNISTGallery | FolderGallery:
    """``fashion-mnist`` (60k training images), ``fashion-mnist:all`` (all 70k) or a folder path."""
    if spec == "fashion-mnist":
        return FashionMNISTGallery("train")
    if spec == "fashion-mnist:all":
        return FashionMNISTGallery("all")
    return FolderGallery(spec)


def file_by_category(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Known labels decide an item's library; the classifier files the rest."""
    return np.where(labels >= 0, labels, probs.argmax(1)).astype(np.int16)


def assemble(embeddings: np.ndarray, labels: np.ndarray, category: np.ndarray, model_sha256: str,
             bits: int = 256, seed: int = 0, class_names: list[str] | None = None, **extra) -> GalleryIndex:
    """Hash the embeddings (centred on their mean) and split them into category libraries."""
    class_names = list(class_names or CLASS_NAMES)
    hasher = Hasher.create(embeddings.shape[1], bits, seed, center=embeddings.mean(0) if len(embeddings) else None)
    codes = hasher.hash(embeddings)
    emb16 = embeddings.astype(np.float16)
    libraries = []
    for c in range(len(class_names)):
        ids = np.flatnonzero(category == c)
        libraries.append(CategoryLibrary(ids.astype(np.int64), codes[ids], emb16[ids]))
    return GalleryIndex(hasher=hasher, model_sha256=model_sha256, class_names=class_names, categories=libraries,
                        labels=labels.astype(np.int16), item_category=category.astype(np.int16), **extra)


def build_index(embedder: Embedder, gallery: FashionMNISTGallery | FolderGallery, bits: int = 256, seed: int = 0,
                batch_size: int = 1024) -> GalleryIndex:
    """Run the whole gallery through the model once and return the index (not yet written)."""
    progress = Progress(len(gallery), "indexing", unit="images")
    embs, probs, labels, images, paths = [], [], [], [], []
    for batch in gallery.batches(embedder.input_shape, batch_size):
        p, e = embedder(batch.images, batch_size)
        probs.append(p)
        embs.append(e)
        labels.append(batch.labels)
        if batch.images_u8 is not None:
            images.append(batch.images_u8)
        if batch.paths is not None:
            paths.extend(batch.paths)
        progress.update(batch.attempted)
    progress.close()
    labels_all = np.concatenate(labels)
    category = file_by_category(labels_all, np.concatenate(probs))
    index = assemble(np.concatenate(embs), labels_all, category, embedder.sha256, bits, seed,
                     images=np.concatenate(images) if images else None,
                     paths=paths if gallery.source == "folder" else None,
                     root=str(gallery.root) if gallery.root else None, source=gallery.source,
                     meta={"items_per_s": round(progress.rate, 1), "build_seconds": round(progress.elapsed, 2),
                           "skipped": len(getattr(gallery, "skipped", []))})
    return index


def ensure_index(embedder: Embedder, path: str | Path, bits: int = 256) -> GalleryIndex:
    """The default Fashion-MNIST gallery index at ``path``, built if absent or made by another model.

    Only a Fashion-MNIST index is ever rebuilt here (it can be rebuilt from the data at any
    time); a folder gallery's index is never overwritten: that raises instead.
    """
    try:
        return read_index(path, model_sha256=embedder.sha256)
    except IndexStoreError as exc:
        existing = peek_source(path)
        if existing not in (None, "fashion-mnist"):
            raise IndexStoreError(f"{exc}\n(not rebuilding it automatically: it indexes a {existing} gallery)") from exc
        print(f"{exc}\nBuilding the default Fashion-MNIST gallery index at {path} ...", flush=True)
    index = build_index(embedder, FashionMNISTGallery("train"), bits=bits)
    write_index(index, path)
    return read_index(path, model_sha256=embedder.sha256)
