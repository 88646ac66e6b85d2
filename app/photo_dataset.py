"""The clothing photo data set committed under ``datasets/clothing-photos/`` (CC0).

3,781 real photos of garments (floors, beds, hangers; phone lighting) in ten categories,
split into train (3,068), validation (341) and test (372). The photo model trains on
train, every choice is made on validation, and test is only measured. The served photo
catalog is train + validation; the test photos are the queries of the evaluation.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PHOTOS_ROOT = Path(__file__).resolve().parent.parent / "datasets" / "clothing-photos"
SPLITS = ("train", "validation", "test")
CATALOG_SPLITS = ("train", "validation")
FOLDERS = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")
CLASS_NAMES = ("Dress", "Hat", "Long sleeve", "Outerwear", "Pants", "Shirt", "Shoes", "Shorts", "Skirt", "T-shirt")


@dataclass(frozen=True)
class PhotoSet:
    """Photos of some splits: paths relative to ``root`` and their labels (indexes into ``class_names``)."""

    root: Path
    paths: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> bytes:
        return (self.root / self.paths[i]).read_bytes()


def load_photos(*splits: str, root: Path = PHOTOS_ROOT) -> PhotoSet:
    """The photos of ``splits`` in a fixed order (split, category, file name)."""
    paths, labels = [], []
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        for label, folder in enumerate(FOLDERS):
            files = sorted((root / split / folder).glob("*.jpg"))
            paths += [f.relative_to(root).as_posix() for f in files]
            labels += [label] * len(files)
    if not paths:
        raise FileNotFoundError(f"no photos under {root} for {', '.join(splits)} "
                                f"(expected {root}/<split>/<category>/*.jpg)")
    return PhotoSet(root, tuple(paths), np.array(labels, np.int16))


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
MIN_PER_CATEGORY = 5   # one for validation, one for test, the rest (at least three) to learn from
HELD_OUT = 0.1         # of each category, for validation and again for test


def image_files(folder: Path) -> list[Path]:
    """Every JPEG, PNG, WebP and GIF file below ``folder`` (sub-folders included), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_splits(folder: Path) -> tuple[tuple[str, ...], dict[str, PhotoSet]]:
    """A shop's own photos, one sub-folder per category (its name is the category's): the category names and
    the train, validation and test splits (ValueError saying what is wrong with the folder).

    Each category gives 10% (at least one photo) to validation and as many to test; which photos
    is fixed by the SHA-256 of their paths, so the same folder always splits the same way.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"--data {folder}: no such folder")
    categories = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(categories) < 2:
        raise ValueError(f"--data {folder}: needs at least two category sub-folders (found {len(categories)}), "
                         f"e.g. {folder}/bags/*.jpg and {folder}/socks/*.jpg")
    paths: dict[str, list[str]] = {split: [] for split in SPLITS}
    labels: dict[str, list[int]] = {split: [] for split in SPLITS}
    for label, name in enumerate(categories):
        files = [p.relative_to(folder).as_posix() for p in image_files(folder / name)]
        if len(files) < MIN_PER_CATEGORY:
            raise ValueError(f"--data {folder}: category {name!r} has {len(files)} photo(s); each needs at least "
                             f"{MIN_PER_CATEGORY} (JPEG, PNG, WebP or GIF)")
        files.sort(key=lambda f: hashlib.sha256(f.encode()).digest())
        held = max(1, round(HELD_OUT * len(files)))
        for split, chosen in (("validation", files[:held]), ("test", files[held:2 * held]),
                              ("train", files[2 * held:])):
            paths[split] += sorted(chosen)
            labels[split] += [label] * len(chosen)
    return tuple(categories), {split: PhotoSet(folder, tuple(paths[split]), np.array(labels[split], np.int16),
                                               tuple(categories)) for split in SPLITS}
