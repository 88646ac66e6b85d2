"""Hand-crafted image features for the paper's Table 3 (classic features vs CNN features).

Written in NumPy so no image library is needed: a global intensity histogram and HOG
(histograms of oriented gradients). Each gives unit-normalised vectors, so they go
through exactly the same hashing, routing and cosine re-rank as the CNN embedding.
Gallery and queries are both featurised from the model's prepared input, as the CNN sees them.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.runtime import InferenceModel

Feature = Callable[[np.ndarray], np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def _grey(images: np.ndarray) -> np.ndarray:
    """(n, h, w) or (n, h, w, 1) images, values 0-255, as float32 (n, h, w)."""
    x = np.asarray(images, np.float32)
    return x[..., 0] if x.ndim == 4 else x


def intensity_histogram(images: np.ndarray, bins: int = 32) -> np.ndarray:
    """Global grey-level histogram: the weakest classic colour feature (ignores shape entirely)."""
    x = _grey(images)
    idx = np.clip((x * (bins / 256.0)).astype(np.int64), 0, bins - 1).reshape(len(x), -1)
    idx += bins * np.arange(len(x))[:, None]
    return _unit(np.bincount(idx.ravel(), minlength=bins * len(x)).reshape(len(x), bins).astype(np.float32))


def hog(images: np.ndarray, cell: int = 4, orientations: int = 9) -> np.ndarray:
    """HOG (Dalal and Triggs): unsigned gradients, cell histograms, 2x2-cell blocks with L2-Hys."""
    x = _grey(images)
    gx, gy = np.zeros_like(x), np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    angle_bin = np.minimum((np.arctan2(gy, gx) % np.pi) * (orientations / np.pi), orientations - 1).astype(np.int8)
    n, h, w = x.shape
    ch, cw = h // cell, w // cell
    cells = np.stack([np.where(angle_bin == b, magnitude, 0.0)[:, :ch * cell, :cw * cell]
                      .reshape(n, ch, cell, cw, cell).sum(axis=(2, 4)) for b in range(orientations)], axis=-1)
    blocks = np.concatenate([cells[:, i:ch - 1 + i, j:cw - 1 + j] for i in (0, 1) for j in (0, 1)], axis=-1)
    blocks = blocks / (np.linalg.norm(blocks, axis=-1, keepdims=True) + 1e-6)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / (np.linalg.norm(blocks, axis=-1, keepdims=True) + 1e-6)
    return _unit(blocks.reshape(n, -1))


def compute(feature: Feature, images: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """A feature over many images in slices, so the gradient arrays of 60k images never coexist."""
    return np.concatenate([feature(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


FEATURES: dict[str, Feature] = {
    "intensity histogram (32 bins)": intensity_histogram,
    "HOG (4x4-px cells, 9 orientations, 2x2 blocks)": hog,
}


class FeatureModel:
    """A served model's probabilities (routing) with a hand-crafted feature (hashing, re-rank) as the embedding.

    It offers what ``Catalog`` calls on a model (card, class names, prepare, forward_one),
    so routing, hashing and re-ranking stay exactly as served and Table 3 compares features only.
    """

    def __init__(self, cnn: InferenceModel, feature: Feature, name: str):
        self.cnn, self.feature, self.name = cnn, feature, name
        self.card, self.class_names, self.input_shape = cnn.card, cnn.class_names, cnn.input_shape
        self.path, self.runtime = cnn.path, f"{cnn.runtime} + {name}"
        self.sha256 = f"{cnn.sha256}+{name}"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return self.cnn.prepare(image)

    def forward_one(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, _ = self.cnn.forward_one(x)
        return probs, self.feature(np.asarray(x)[None])[0]
