"""Class-routed search: classify, hash, scan one category's codes, re-rank by cosine.

Modes:
- ``routed`` (the paper): only the predicted category's library is scanned.
- ``direct`` (the paper's Table 4 baseline): every item is scanned.
- ``soft`` (beyond the paper): when the classifier is unsure, the two or three most likely
  categories are scanned and their evidence merged with the classifier's: the library whose
  closest match best backs its probability answers, so one wrong guess does not sink the query.

In every mode the Hamming scan picks ``candidates`` items and the stored float16
embeddings re-rank them by exact cosine, which is the similarity users see.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .hamming_index import make_hamming_index
from .hashing import cosine_similarity
from .index_store import GalleryIndex, read_index
from .model import Embedder
from .preprocess import load_upload, prepare

MODES = ("routed", "direct", "soft")
MAX_K = 100
# Soft mode, tuned by leave-one-out queries on the training gallery (not on the test set):
SOFT_MIN_PROBABILITY = 0.01   # categories less likely than this are not worth a scan
SOFT_EVIDENCE_WEIGHT = 80.0   # log-probability units per unit of cosine similarity


def check_query(k: int, mode: str) -> None:
    """Refuse a bad mode or k before any work is done."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")


@dataclass(frozen=True)
class Hit:
    id: int
    category: int      # the library the item is filed under
    label: int         # its known label, -1 when unknown
    similarity: float  # cosine of the embeddings, in [0, 1]
    hamming: int       # Hamming distance of the codes


@dataclass
class SearchResult:
    mode: str
    probabilities: np.ndarray  # (num_classes,) of the query
    searched: list[int]        # categories scanned
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def category(self) -> int:
        return int(self.probabilities.argmax())

    def top_categories(self, n: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(-self.probabilities, kind="stable")[:n]
        return [(int(c), float(self.probabilities[c])) for c in order]


class Searcher:
    """A model and an index, ready to answer queries; build once per process."""

    def __init__(self, embedder: Embedder, index: GalleryIndex, engine: str = "auto", candidates: int = 256,
                 soft_threshold: float = 0.99, soft_max_categories: int = 3):
        if index.model_sha256 != embedder.sha256:
            raise ValueError("index and model do not match (different model file hashes)")
        self.embedder, self.index = embedder, index
        self.candidates, self.soft_threshold, self.soft_max_categories = candidates, soft_threshold, soft_max_categories
        libs = index.categories
        # All libraries laid end to end: category c owns rows offsets[c]:offsets[c+1].
        self.offsets = np.cumsum([0] + [len(lib) for lib in libs])
        self.ids = np.concatenate([lib.ids for lib in libs])
        self.row_category = np.repeat(np.arange(len(libs), dtype=np.int16), [len(lib) for lib in libs])
        self.embeddings = np.concatenate([lib.embeddings for lib in libs])
        codes = np.concatenate([lib.codes for lib in libs])
        for lib, a, b in zip(libs, self.offsets[:-1], self.offsets[1:]):
            # The libraries become views of the flat arrays, so embeddings are held once, not twice.
            lib.ids, lib.codes, lib.embeddings = self.ids[a:b], codes[a:b], self.embeddings[a:b]
        self.engines = [make_hamming_index(lib.codes, engine) for lib in libs]
        self.all_engine = make_hamming_index(codes, engine)
        self.engine = self.all_engine.engine

    @classmethod
    def open(cls, model_path: str | Path, index_path: str | Path, **kwargs) -> "Searcher":
        """Load both files; a mismatched or damaged index raises IndexStoreError naming the fix."""
        embedder = Embedder(model_path)
        return cls(embedder, read_index(index_path, model_sha256=embedder.sha256), **kwargs)

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    def item_image(self, item_id: int) -> np.ndarray | bytes:
        """A gallery item's stored image (uint8 array) or file bytes, for "more like this"."""
        if not 0 <= item_id < len(self.index):
            raise KeyError(item_id)
        if self.index.images is not None:
            return self.index.images[item_id]
        return (Path(self.index.root) / self.index.paths[item_id]).read_bytes()

    def payload(self, result: SearchResult, image_url: Callable[[int], str] | None = None) -> dict:
        """The JSON shape shared by ``search --json`` and the web API."""
        names = self.class_names
        results = []
        for hit in result.hits:
            row = {"id": hit.id, "category": names[hit.category], "similarity": round(hit.similarity, 4),
                   "hamming": hit.hamming}
            if self.index.paths is not None:
                row["path"] = self.index.paths[hit.id]
            if image_url is not None:
                row["image_url"] = image_url(hit.id)
            results.append(row)
        return {
            "mode": result.mode,
            "category": {"name": names[result.category], "probability": round(float(result.probabilities.max()), 4)},
            "top_categories": [{"name": names[c], "probability": round(p, 4)} for c, p in result.top_categories(3)],
            "searched_categories": [names[c] for c in result.searched],
            "results_category": names[result.hits[0].category] if result.hits else None,
            "results": results,
            "timings_ms": result.timings_ms,
        }

    def categories_to_search(self, probs: np.ndarray, mode: str) -> list[int]:
        """routed: the top category; direct: all; soft: the top few when the classifier is unsure."""
        if mode == "direct":
            return list(range(len(self.engines)))
        order = [int(c) for c in np.argsort(-probs, kind="stable")]
        if mode == "routed" or probs[order[0]] >= self.soft_threshold:
            return order[:1]
        return [c for c in order[: self.soft_max_categories] if probs[c] >= SOFT_MIN_PROBABILITY] or order[:1]

    def search(self, image: bytes | Image.Image | np.ndarray, k: int = 20, mode: str = "routed") -> SearchResult:
        """Rank the gallery for one query image; bytes are decoded and checked like an upload."""
        check_query(k, mode)
        t0 = time.perf_counter()
        shape = self.embedder.input_shape
        x = load_upload(image, shape) if isinstance(image, bytes) else prepare(image, shape)
        t1 = time.perf_counter()
        probs, emb = self.embedder.forward_one(x)
        t2 = time.perf_counter()
        result = self.search_embedding(probs, emb, k, mode)
        timings = {"preprocess": round(1000 * (t1 - t0), 3), "forward": round(1000 * (t2 - t1), 3),
                   **result.timings_ms}
        timings["total"] = round(1000 * (time.perf_counter() - t0), 3)
        result.timings_ms = timings
        return result

    def search_embedding(self, probs: np.ndarray, emb: np.ndarray, k: int = 20, mode: str = "routed") -> SearchResult:
        """The post-forward path (hash, scan, re-rank) on its own, so benchmarks can time it without the CNN."""
        check_query(k, mode)
        t0 = time.perf_counter()
        code = self.index.hasher.hash(emb)[0]
        t1 = time.perf_counter()
        searched = self.categories_to_search(probs, mode)
        dist, rows = self._scan(code, searched, max(self.candidates, k))
        t2 = time.perf_counter()
        sims = cosine_similarity(emb, self.embeddings[rows])
        if mode == "soft" and len(searched) > 1:
            keep = self.row_category[rows] == self._best_supported(probs, sims, rows, searched)
            dist, rows, sims = dist[keep], rows[keep], sims[keep]
        hits = self._top_hits(dist, rows, sims, k)
        t3 = time.perf_counter()
        stages = ("hash", "scan", "rerank")
        timings = {s: round(1000 * (b - a), 3) for s, a, b in zip(stages, (t0, t1, t2), (t1, t2, t3))}
        return SearchResult(mode, probs, searched, hits, timings)

    def _best_supported(self, probs: np.ndarray, sims: np.ndarray, rows: np.ndarray, searched: list[int]) -> int:
        """The searched category with the best mix of classifier belief and closest catalog match.

        score(c) = log p(c) + SOFT_EVIDENCE_WEIGHT * (best cosine in c): a near-identical item in
        the runner-up category outweighs a small lead in probability. Choosing one library this
        way beat merging the lists item by item (see the README's evaluation section).
        """
        cats = self.row_category[rows]
        best = [sims[cats == c].max(initial=0.0) for c in searched]
        scores = np.log(np.maximum(probs[searched], 1e-12)) + SOFT_EVIDENCE_WEIGHT * np.asarray(best)
        return searched[int(np.argmax(scores))]

    def _scan(self, code: np.ndarray, categories: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Hamming candidates as (distances, global rows)."""
        if len(categories) == len(self.engines):
            return self.all_engine.search(code, n)
        parts = [self.engines[c].search(code, n) for c in categories]
        dist = np.concatenate([d for d, _ in parts])
        rows = np.concatenate([r + self.offsets[c] for c, (_, r) in zip(categories, parts)])
        return dist, rows

    def _top_hits(self, dist: np.ndarray, rows: np.ndarray, sims: np.ndarray, k: int) -> list[Hit]:
        """Most similar first; equal cosines fall back to the Hamming distance."""
        order = np.lexsort((dist, -sims))[:k]
        ids = self.ids[rows[order]]
        return [Hit(int(i), int(self.row_category[r]), int(self.index.labels[i]), float(s), int(d))
                for i, r, s, d in zip(ids, rows[order], sims[order], dist[order])]
