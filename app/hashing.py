"""Random-hyperplane LSH (SimHash): embeddings to packed binary codes, and Hamming distance.

Each bit says on which side of a random hyperplane a (centred) embedding lies, so the
expected Hamming distance between two codes is bits * angle / pi.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BITS, MAX_BITS = 32, 1024


def check_bits(bits: int) -> int:
    if not (MIN_BITS <= bits <= MAX_BITS and bits % 32 == 0):
        raise ValueError(f"bits must be a multiple of 32 between {MIN_BITS} and {MAX_BITS}, got {bits}")
    return bits


@dataclass(frozen=True)
class Hasher:
    """Hyperplanes plus the centre subtracted before hashing.

    Centring matters: ReLU embeddings all live in the positive orthant, so without it
    most hyperplanes put every item on the same side and their bits carry nothing.
    """

    hyperplanes: np.ndarray  # (bits, dim) float32
    center: np.ndarray       # (dim,) float32

    @classmethod
    def create(cls, dim: int, bits: int = 256, seed: int = 0, center: np.ndarray | None = None) -> Hasher:
        check_bits(bits)
        planes = np.random.default_rng(seed).standard_normal((bits, dim)).astype(np.float32)
        c = np.zeros(dim, np.float32) if center is None else np.asarray(center, np.float32)
        return cls(planes, c)

    @property
    def bits(self) -> int:
        return self.hyperplanes.shape[0]

    @property
    def code_bytes(self) -> int:
        return self.bits // 8

    def hash(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, dim) floats -> (n, bits/8) uint8 packed codes.

        Embeddings are rounded to float16 first, as stores keep them: a stored code is then
        exactly the hash of its stored embedding, and an item searched with its own model
        output lands at Hamming distance 0.
        """
        x = np.atleast_2d(np.asarray(embeddings, np.float32)).astype(np.float16).astype(np.float32) - self.center
        return np.packbits(x @ self.hyperplanes.T > 0, axis=1)


def hamming(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Hamming distances from one packed code to many, by popcount on 64-bit words."""
    q = np.ascontiguousarray(query, np.uint8).reshape(1, -1)
    c = np.ascontiguousarray(codes, np.uint8)
    if c.shape[1] % 8 == 0:
        q, c = q.view(np.uint64), c.view(np.uint64)
    return np.bitwise_count(np.bitwise_xor(c, q)).sum(axis=1, dtype=np.int32)


def cosine_similarity(query: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Cosine of unit vectors mapped to [0, 1] (clipped: float16 storage can overshoot 1 by a hair)."""
    sims = np.asarray(embeddings, np.float32) @ np.asarray(query, np.float32).ravel()
    return np.clip(sims, 0.0, 1.0)
