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

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .imaging.decode import ImageRejected
from .photo_dataset import CATALOG_SPLITS
from .photo_dataset import PHOTOS_ROOT, image_files
from .runtime import InferenceModel
from .settings import ROOT
from .stores.base import HASH_BYTES

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


def content_hash(data: bytes) -> str:
    """An item's content hash (hex): what tells a changed photo from an unchanged one, and versions its URL."""
    return hashlib.sha256(data).hexdigest()[:2 * HASH_BYTES]


@dataclass
class Batch:
    inputs: np.ndarray                   # (n, *input_shape) float32, model-ready
    labels: np.ndarray                   # (n,) int16, -1 = unknown
    attempted: int                       # source items read for this batch, skipped ones included
    paths: list[str]                     # each item's name in the source (a file relative to the root)
    hashes: list[str]                    # content hash of each item's picture
    images: np.ndarray | None = None     # (n, 28, 28) uint8 kept in the store for display


class FashionMNISTSource:
    """The paper's catalog: Fashion-MNIST training images (``split="all"`` adds the test images)."""

    kind = "fashion-mnist"
    root = None

    def __init__(self, split: str = "train", limit: int | None = None):
        from .fashion_mnist import load_fashion_mnist

        data = load_fashion_mnist()
        if split == "train":
            self.images, self.labels = data.x_train, data.y_train
        elif split == "all":
            self.images = np.concatenate([data.x_train, data.x_test])
            self.labels = np.concatenate([data.y_train, data.y_test])
        else:
            raise ValueError(f"split must be 'train' or 'all', got {split!r}")
        self.images, self.labels = self.images[:limit], self.labels[:limit]  # limit: small catalogs for tests
        self.skipped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, model: InferenceModel, size: int) -> Iterator[Batch]:
        for start in range(0, len(self), size):
            u8 = self.images[start:start + size]
            inputs = np.stack([model.prepare(img) for img in u8])
            names = [self.name(i) for i in range(start, start + len(u8))]
            yield Batch(inputs, self.labels[start:start + size].astype(np.int16), len(u8), names,
                        [content_hash(img.tobytes()) for img in u8], images=u8)

    def limit(self, n: int) -> None:
        """Keep the first ``n`` images (a quick check of a build)."""
        self.images, self.labels = self.images[:n], self.labels[:n]

    def name(self, index: int) -> str:
        """An image's name in the data set (its split and position): its stable key across rebuilds."""
        split, i = ("train", index) if index < 60_000 else ("test", index - 60_000)
        return f"{split}/{i}"


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
            self.files = sorted(p for top in tops for p in image_files(top))
        if not self.files:
            raise FileNotFoundError(f"no JPEG/PNG/WebP/GIF images under {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def limit(self, n: int) -> None:
        """Keep ``n`` files spread evenly over the sorted list (so every category folder is sampled)."""
        if n < len(self.files):
            self.files = [self.files[int(i)] for i in np.linspace(0, len(self.files) - 1, n).round()]

    def label(self, path: Path, class_names: Sequence[str]) -> int:
        """The category its folder names (the nearest folder that names one), else -1."""
        for parent in path.relative_to(self.root).parents:
            if parent.name and (label := label_of_folder(parent.name, class_names)) >= 0:
                return label
        return -1

    def batches(self, model: InferenceModel, size: int) -> Iterator[Batch]:
        for start in range(0, len(self.files), size):
            chunk = self.files[start:start + size]
            inputs, labels, paths, hashes = [], [], [], []
            for path in chunk:
                rel = path.relative_to(self.root).as_posix()
                try:
                    data = path.read_bytes()
                    inputs.append(model.prepare(model.decode(data, self.max_pixels)))
                except (ImageRejected, OSError) as exc:
                    self.skipped.append((rel, str(exc)))
                    continue
                labels.append(self.label(path, model.class_names))
                paths.append(rel)
                hashes.append(content_hash(data))
            empty = np.zeros((0, *model.input_shape), np.float32)
            yield Batch(np.stack(inputs) if inputs else empty, np.array(labels, np.int16), len(chunk), paths, hashes)

    def unnamed_folders(self, class_names: Sequence[str]) -> dict[str, int]:
        """Folders (relative to the root) holding photos that no folder name files: folder -> photos."""
        out: dict[str, int] = {}
        for path in self.files:
            rel = path.relative_to(self.root)
            if rel.parent != Path(".") and self.label(path, class_names) < 0:
                folder = rel.parent.as_posix()
                out[folder] = out.get(folder, 0) + 1
        return out


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
