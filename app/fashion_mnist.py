"""Fashion-MNIST loading: the default gallery and the training data.

The Debian package ``dataset-fashion-mnist`` is looked at first because it works
offline; ``$FASHION_MNIST_DIR`` lets users point at their own copy; the Keras
cache/download is the last resort for machines with internet.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "fashion-mnist"
FILES = {
    "x_train": ("train-images-idx3-ubyte.gz", 60000),
    "y_train": ("train-labels-idx1-ubyte.gz", 60000),
    "x_test": ("t10k-images-idx3-ubyte.gz", 10000),
    "y_test": ("t10k-labels-idx1-ubyte.gz", 10000),
}


class DatasetError(RuntimeError):
    """Fashion-MNIST could not be found or failed verification."""


@dataclass(frozen=True)
class FashionMNIST:
    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray   # (10000, 28, 28) uint8
    y_test: np.ndarray   # (10000,) uint8
    source: str


def candidate_dirs() -> list[Path]:
    """The three places looked at, in order."""
    dirs = [DEBIAN_DIR]
    env = os.environ.get("FASHION_MNIST_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(KERAS_CACHE_DIR)
    return dirs


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (gzip or plain); the header gives the shape, so bad files are caught."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupted gzip stream
        raise DatasetError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: expected {int(np.prod(shape))} values for shape {shape}, found {data.size}")
    return data.reshape(shape)


def _load_dir(directory: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, (name, count) in FILES.items():
        path = directory / name
        if not path.exists():
            path = directory / name[:-3]  # an unpacked copy is fine too
        arr = _read_idx(path)
        expected = (count, 28, 28) if key.startswith("x") else (count,)
        if arr.shape != expected:
            raise DatasetError(f"{path}: shape {arr.shape}, expected {expected}")
        if key.startswith("y") and arr.max() > 9:
            raise DatasetError(f"{path}: labels must be 0-9, found {int(arr.max())}")
        arrays[key] = arr
    return arrays


def _has_files(directory: Path) -> bool:
    return all((directory / n).exists() or (directory / n[:-3]).exists() for n, _ in FILES.values())


def load_fashion_mnist(dirs: list[Path] | None = None, download: bool = True) -> FashionMNIST:
    """Load and verify all 70,000 images from the first place that has them."""
    dirs = candidate_dirs() if dirs is None else [Path(d) for d in dirs]
    for directory in dirs:
        if _has_files(directory):
            return FashionMNIST(**_load_dir(directory), source=str(directory))
    if download:
        try:
            import keras

            (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
            return FashionMNIST(xtr, ytr, xte, yte, source="keras download")
        except Exception as exc:  # no network, proxy, disk full...
            reason = f"the Keras download failed ({type(exc).__name__}: {exc})"
    else:
        reason = "downloading was not allowed"
    looked = "\n".join(f"  - {d}" for d in dirs)
    raise DatasetError(
        "Fashion-MNIST not found. Looked in:\n" + looked + f"\nand {reason}.\n"
        "Fix: `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or set "
        "FASHION_MNIST_DIR to a folder holding the four *-ubyte.gz files."
    )
