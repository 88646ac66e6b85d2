"""The clothing photo data set committed under ``datasets/clothing-photos/`` (CC0).

3,781 real photos of garments (floors, beds, hangers; phone lighting) in ten categories,
split into train (3,068), validation (341) and test (372). The photo model trains on
train, every choice is made on validation, and test is only measured. The served photo
catalog is train + validation; the test photos are the queries of the evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent / "datasets" / "clothing-photos"
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


def load_photos(*splits: str, root: Path = ROOT) -> PhotoSet:
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


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def load_folder(folder: Path, validation_every: int = 10) -> dict[str, PhotoSet]:
    """A shop's photos sorted into category sub-folders, as training splits: {"train", "validation"}.

    The categories are the sub-folders holding photos (sorted by name; their names become the
    class names); every ``validation_every``-th photo of each category (in name order) is held
    out for validation. There is no test split: a shop measures on its own queries.
    """
    folder = Path(folder)
    categories = sorted(d.name for d in folder.iterdir() if d.is_dir() and any(
        f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir()))
    if len(categories) < 2:
        raise FileNotFoundError(f"{folder} needs at least two sub-folders of photos, one per category")
    splits: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "validation": ([], [])}
    for label, name in enumerate(categories):
        files = sorted(f for f in (folder / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for i, f in enumerate(files):
            paths, labels = splits["validation" if i % validation_every == validation_every - 1 else "train"]
            paths.append(f.relative_to(folder).as_posix())
            labels.append(label)
    return {split: PhotoSet(folder, tuple(paths), np.array(labels, np.int16), tuple(categories))
            for split, (paths, labels) in splits.items()}
