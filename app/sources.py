"""Sources: what a catalog is indexed from, read in batches of model inputs.

- ``fashion-mnist``: the 60,000 Fashion-MNIST training images (the 10,000 test images
  stay out, as fair queries); the 28x28 images are kept in the store for display.
- ``photos``: the committed clothing photos' train and validation splits (the test split
  stays out, as fair queries); the store keeps their paths.
- ``folder``: a shop's own folder of photos. Photos in sub-folders named after one of the
  model's categories ("Dress/", "t-shirts/", ...) are filed under it; the others under the
  category the model predicts. Unreadable files are skipped and reported.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .imaging.decode import ImageRejected
from .photo_dataset import CATALOG_SPLITS
from .photo_dataset import ROOT as PHOTOS_ROOT
from .runtime import InferenceModel
from .settings import ROOT

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
# Folder names that mean a category under another name (slugs: lower case, letters and digits only).
SYNONYMS = {"outwear": "outerwear", "pants": "trouser", "boots": "ankleboot", "jackets": "coat", "jacket": "coat"}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def label_of_folder(name: str, class_names: Sequence[str]) -> int:
    """Index of the category a folder name spells (case, spaces, punctuation, a plural "s" ignored), else -1."""
    slugs = {}
    for i, c in enumerate(class_names):
        for part in (c, *c.split("/")):
            slugs[_slug(part)] = i
    slug = _slug(name)
    for candidate in (slug, SYNONYMS.get(slug, ""), slug[:-1] if slug.endswith("s") else "",
                      slug[:-2] if slug.endswith("es") else ""):
        if candidate in slugs:
            return slugs[candidate]
    return -1


def recorded_root(root: Path) -> str:
    """A source root as stored: relative to the repository when inside it, so a moved checkout still works."""
    try:
        return root.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(root.resolve())


def resolve_root(recorded: str) -> Path:
    path = Path(recorded)
    return path if path.is_absolute() else ROOT / path


@dataclass
class Batch:
    inputs: np.ndarray                   # (n, *input_shape) float32, model-ready
    labels: np.ndarray                   # (n,) int16, -1 = unknown
    attempted: int                       # source items read for this batch, skipped ones included
    images: np.ndarray | None = None     # (n, 28, 28) uint8 kept in the store for display
    paths: list[str] | None = None


class FashionMNISTSource:
    """The paper's catalog: Fashion-MNIST training images (``split="all"`` adds the test images)."""

    kind = "fashion-mnist"
    root = None

    def __init__(self, split: str = "train"):
        from .fashion_mnist import load_fashion_mnist

        data = load_fashion_mnist()
        if split == "train":
            self.images, self.labels = data.x_train, data.y_train
        elif split == "all":
            self.images = np.concatenate([data.x_train, data.x_test])
            self.labels = np.concatenate([data.y_train, data.y_test])
        else:
            raise ValueError(f"split must be 'train' or 'all', got {split!r}")
        self.skipped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, model: InferenceModel, size: int) -> Iterator[Batch]:
        for start in range(0, len(self), size):
            u8 = self.images[start:start + size]
            inputs = np.stack([model.prepare(img) for img in u8])
            yield Batch(inputs, self.labels[start:start + size].astype(np.int16), len(u8), images=u8)


@dataclass
class FolderSource:
    """Every JPEG/PNG/WebP/GIF under ``root`` (or only under its ``subdirs``); paths kept relative to root."""

    root: Path
    subdirs: tuple[str, ...] = ()
    kind: str = "folder"
    max_pixels: int = 40_000_000
    files: list[Path] | None = None  # default: every image file found under root (or its subdirs)
    skipped: list[tuple[str, str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"photo folder not found: {self.root}")
        tops = [self.root / d for d in self.subdirs] or [self.root]
        if self.files is None:
            self.files = sorted(p for top in tops for p in top.rglob("*")
                                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise FileNotFoundError(f"no JPEG/PNG/WebP/GIF images under {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def label(self, path: Path, class_names: Sequence[str]) -> int:
        """The category its folder names (the nearest folder that names one), else -1."""
        for parent in path.relative_to(self.root).parents:
            if parent.name and (label := label_of_folder(parent.name, class_names)) >= 0:
                return label
        return -1

    def batches(self, model: InferenceModel, size: int) -> Iterator[Batch]:
        for start in range(0, len(self.files), size):
            chunk = self.files[start:start + size]
            inputs, labels, paths = [], [], []
            for path in chunk:
                rel = path.relative_to(self.root).as_posix()
                try:
                    inputs.append(model.prepare(model.decode(path.read_bytes(), self.max_pixels)))
                except (ImageRejected, OSError) as exc:
                    self.skipped.append((rel, str(exc)))
                    continue
                labels.append(self.label(path, model.class_names))
                paths.append(rel)
            empty = np.zeros((0, *model.input_shape), np.float32)
            yield Batch(np.stack(inputs) if inputs else empty, np.array(labels, np.int16), len(chunk), paths=paths)


def photos_source() -> FolderSource:
    """The committed clothing photos, train and validation splits."""
    return FolderSource(PHOTOS_ROOT, subdirs=CATALOG_SPLITS, kind="photos")


def open_source(spec: str) -> FashionMNISTSource | FolderSource:
    """``fashion-mnist`` (60k training images), ``fashion-mnist:all`` (70k), ``photos``, or a folder path."""
    if spec == "fashion-mnist":
        return FashionMNISTSource("train")
    if spec == "fashion-mnist:all":
        return FashionMNISTSource("all")
    if spec == "photos":
        return photos_source()
    return FolderSource(Path(spec))
