"""Synthetic galleries for timing the search core at sizes the real catalogs cannot reach (up to 1M items).

Embeddings imitate a CNN's: each category is a cloud of sub-clusters around its own
centre, passed through ReLU (non-negative, like an embedding layer) and unit-normalised.
Only speed and memory are read from these galleries, never quality.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.search import SearchEngine, SearchResult
from app.stores import ArraySnapshot, Manifest, NewItems, memory_store

CATEGORIES = 10
DIM = 256
SUBCLUSTERS = 32
CHUNK = 100_000
SPLITS: dict[str, float | None] = {"uniform": None, "skewed": 0.4}  # share of the largest category


@dataclass
class SyntheticSet:
    embeddings: np.ndarray  # (n, DIM) float32, unit rows
    labels: np.ndarray      # (n,) int16
    probs: np.ndarray       # (n, CATEGORIES) float32: a confident classifier that is always right


def category_shares(largest_share: float | None, categories: int = CATEGORIES) -> np.ndarray:
    """Uniform shares, or one category holding ``largest_share`` and the rest splitting what is left."""
    if largest_share is None:
        return np.full(categories, 1.0 / categories)
    return np.array([largest_share] + [(1.0 - largest_share) / (categories - 1)] * (categories - 1))


class Generator:
    """Fixed category centres and sub-clusters, so the gallery and its queries share one distribution."""

    def __init__(self, seed: int = 0, categories: int = CATEGORIES, dim: int = DIM):
        self.rng = np.random.default_rng(seed)
        centres = np.abs(self.rng.standard_normal((categories, 1, dim), dtype=np.float32))
        spread = self.rng.standard_normal((categories, SUBCLUSTERS, dim), dtype=np.float32)
        self.subcentres = centres + 0.5 * spread
        self.noise = 0.6

    def sample(self, n: int, largest_share: float | None) -> SyntheticSet:
        categories, _, dim = self.subcentres.shape
        labels = self.rng.choice(categories, size=n, p=category_shares(largest_share, categories)).astype(np.int16)
        out = np.empty((n, dim), np.float32)
        for start in range(0, n, CHUNK):
            lab = labels[start:start + CHUNK]
            x = self.subcentres[lab, self.rng.integers(0, SUBCLUSTERS, len(lab))]
            x += self.noise * self.rng.standard_normal(x.shape, dtype=np.float32)
            np.maximum(x, 0.0, out=x)
            x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
            out[start:start + CHUNK] = x
        probs = np.full((n, categories), 0.1 / (categories - 1), np.float32)
        probs[np.arange(n), labels] = 0.9
        return SyntheticSet(out, labels, probs)


def synthetic_items(gallery: SyntheticSet) -> NewItems:
    n = len(gallery.labels)
    return NewItems(gallery.embeddings, gallery.labels, gallery.labels, ["0" * 16] * n, [f"s/{i}" for i in range(n)])


def synthetic_store(gallery: SyntheticSet, bits: int) -> ArraySnapshot:
    """An in-memory catalog of the synthetic gallery, filed under its true categories (no model made it)."""
    names = tuple(f"category {c}" for c in range(gallery.probs.shape[1]))
    manifest = Manifest(catalog="synthetic", model_file="none", model_sha256="synthetic", class_names=names,
                        source="synthetic", bits=bits)
    return memory_store(manifest, synthetic_items(gallery), seed=0)  # never written


@dataclass
class SyntheticIndex:
    """The production search engine over a synthetic gallery's snapshot."""

    engine: SearchEngine
    snapshot: ArraySnapshot

    @property
    def candidates(self) -> int:
        return self.engine.candidates

    def search(self, probs: np.ndarray, emb: np.ndarray, k: int, mode: str) -> SearchResult:
        return self.engine.search(self.snapshot, probs, emb, k, mode)


def synthetic_engine(gallery: SyntheticSet, bits: int) -> SyntheticIndex:
    return SyntheticIndex(SearchEngine(), synthetic_store(gallery, bits))
