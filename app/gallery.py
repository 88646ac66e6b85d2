"""Catalog sources the index is built from: the Fashion-MNIST gallery or a folder of photos.

A folder may be sorted into sub-folders named after categories ("Trouser/", "ankle_boot/");
those names become the items' known labels. Items without one are filed under the
category the model predicts for them.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import CLASS_NAMES, load_fashion_mnist
from .preprocess import ImageRejected, load_upload, prepare

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def label_of_folder(name: str, class_names: tuple[str, ...] | list[str] = CLASS_NAMES) -> int:
    """Index of the category a folder name spells (case, spaces and punctuation ignored), else -1."""
    slugs = {_slug(c): i for i, c in enumerate(class_names)}
    slugs.update({_slug(part): i for i, c in enumerate(class_names) for part in c.split("/")})
    return slugs.get(_slug(name), -1)


@dataclass
class Batch:
    images: np.ndarray        # (n, *input_shape) float32, model-ready
    labels: np.ndarray        # (n,) int16, -1 = unknown
    attempted: int                       # source items read for this batch, skipped ones included
    images_u8: np.ndarray | None = None  # (n, 28, 28) uint8 kept in the store for display
    paths: list[str] | None = None


class FashionMNISTGallery:
    """The default catalog: the 60,000 training images (test images stay out, as fair queries)."""

    source = "fashion-mnist"
    root = None

    def __init__(self, split: str = "train"):
        data = load_fashion_mnist()
        if split == "train":
            self.images, self.labels = data.x_train, data.y_train
        elif split == "all":
            self.images = np.concatenate([data.x_train, data.x_test])
            self.labels = np.concatenate([data.y_train, data.y_test])
        else:
            raise ValueError(f"split must be 'train' or 'all', got {split!r}")
        self.split = split

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, input_shape: tuple[int, ...], size: int) -> Iterator[Batch]:
        for start in range(0, len(self), size):
            u8 = self.images[start:start + size]
            x = u8.astype(np.float32)[..., None]
            if tuple(input_shape) != x.shape[1:]:  # e.g. VGG-16's 224x224x3: letterboxed like an upload
                x = np.stack([prepare(img, input_shape) for img in u8])
            yield Batch(x, self.labels[start:start + size].astype(np.int16), len(u8), images_u8=u8)


class FolderGallery:
    """Every JPEG/PNG/WebP/GIF under ``root``; paths are stored relative to it."""

    source = "folder"

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"gallery folder not found: {root}")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise FileNotFoundError(f"no JPEG/PNG/WebP/GIF images under {root}")
        self.skipped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.files)

    def batches(self, input_shape: tuple[int, ...], size: int) -> Iterator[Batch]:
        for start in range(0, len(self.files), size):
            images, labels, paths = [], [], []
            chunk = self.files[start:start + size]
            for path in chunk:
                rel = path.relative_to(self.root).as_posix()
                try:
                    images.append(load_upload(path.read_bytes(), input_shape))
                except (ImageRejected, OSError) as exc:
                    self.skipped.append((rel, str(exc)))
                    continue
                labels.append(label_of_folder(path.parent.name) if path.parent != self.root else -1)
                paths.append(rel)
            empty = np.zeros((0, *input_shape), np.float32)
            yield Batch(np.stack(images) if images else empty, np.array(labels, np.int16), len(chunk), paths=paths)
