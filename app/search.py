"""Class-routed search over one catalog store: hash, scan the routed libraries, re-rank by cosine.

Modes:
- ``routed`` (the paper): only the predicted category's library is scanned.
- ``direct`` (the paper's Table 4 baseline): every item is scanned.
- ``soft`` (beyond the paper): when the classifier is unsure, the two or three most likely
  categories are scanned and the library whose closest match best backs the classifier's
  probability answers, so one wrong guess does not sink the query.

In every mode the Hamming scan picks ``candidates`` items and the stored float16
embeddings re-rank them by exact cosine, which is the similarity users see. The engine
takes the model's outputs, not images: the catalog (app/catalog.py) runs the model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .hashing import cosine_similarity
from .scan import make_scanner
from .store import CatalogStore

MODES = ("routed", "direct", "soft")
DEFAULT_MODE = "routed"
DEFAULT_K = 20
MAX_K = 100


def check_query(k: int, mode: str) -> None:
    """Refuse a bad mode or k before any work is done."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, got {k}")


@dataclass(frozen=True)
class SoftRouting:
    """When and how ``soft`` mode scans more than one library; tuned per model, never on test queries.

    score(c) = log p(c) + evidence_weight * (best cosine in c) picks the answering library.
    """

    threshold: float = 0.99        # below this top probability, more libraries are scanned
    max_categories: int = 3
    min_probability: float = 0.01  # categories less likely than this are not worth a scan
    evidence_weight: float = 80.0  # log-probability units per unit of cosine similarity


@dataclass(frozen=True)
class Hit:
    id: int
    category: int      # the library the item is filed under
    label: int         # its known label, -1 when unknown
    similarity: float  # cosine of the embeddings, in [0, 1]
    hamming: int       # Hamming distance of the codes


@dataclass
class SearchResult:
    catalog: str
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

    @property
    def ids(self) -> np.ndarray:
        return np.array([h.id for h in self.hits], np.int64)


class SearchEngine:
    """Scanners over one store's libraries, ready to answer queries; build once per process."""

    def __init__(self, store: CatalogStore, engine: str = "auto", candidates: int = 256,
                 soft: SoftRouting = SoftRouting()):
        self.store, self.candidates, self.soft = store, candidates, soft
        self.scanners = [make_scanner(store.codes[store.library(c)], engine) for c in range(len(store.class_names))]
        self.all_scanner = make_scanner(store.codes, engine)
        self.engine = self.all_scanner.engine

    def categories_to_search(self, probs: np.ndarray, mode: str) -> list[int]:
        """routed: the top category; direct: all; soft: the top few when the classifier is unsure."""
        if mode == "direct":
            return list(range(len(self.scanners)))
        order = [int(c) for c in np.argsort(-probs, kind="stable")]
        if mode == "routed" or probs[order[0]] >= self.soft.threshold:
            return order[:1]
        return [c for c in order[: self.soft.max_categories] if probs[c] >= self.soft.min_probability] or order[:1]

    def search(self, probs: np.ndarray, emb: np.ndarray, k: int = DEFAULT_K, mode: str = DEFAULT_MODE) -> SearchResult:
        """Hash, scan and re-rank for one query's model outputs."""
        check_query(k, mode)
        t0 = time.perf_counter()
        code = self.store.hasher.hash(emb)[0]
        t1 = time.perf_counter()
        searched = self.categories_to_search(probs, mode)
        dist, rows = self._scan(code, searched, max(self.candidates, k))
        t2 = time.perf_counter()
        sims = cosine_similarity(emb, self.store.embeddings[rows])
        if mode == "soft" and len(searched) > 1:
            keep = self.store.categories[rows] == self._best_supported(probs, sims, rows, searched)
            dist, rows, sims = dist[keep], rows[keep], sims[keep]
        hits = self._top_hits(dist, rows, sims, k)
        t3 = time.perf_counter()
        timings = {s: round(1000 * (b - a), 3) for s, a, b in zip(("hash", "scan", "rerank"), (t0, t1, t2),
                                                                   (t1, t2, t3))}
        return SearchResult(self.store.manifest.catalog, mode, probs, searched, hits, timings)

    def exact_top(self, emb: np.ndarray, category: int, k: int) -> np.ndarray:
        """Item ids of the exact-cosine top ``k`` within one library: the reference LSH recall is measured by."""
        lib = self.store.library(category)
        sims = cosine_similarity(emb, self.store.embeddings[lib])
        n = min(k, len(sims))
        top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
        return self.store.ids[lib][top]

    def _best_supported(self, probs: np.ndarray, sims: np.ndarray, rows: np.ndarray, searched: list[int]) -> int:
        """The searched category with the best mix of classifier belief and closest catalog match."""
        cats = self.store.categories[rows]
        best = [sims[cats == c].max(initial=0.0) for c in searched]
        scores = np.log(np.maximum(probs[searched], 1e-12)) + self.soft.evidence_weight * np.asarray(best)
        return searched[int(np.argmax(scores))]

    def _scan(self, code: np.ndarray, categories: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Hamming candidates as (distances, store rows)."""
        if len(categories) == len(self.scanners):
            return self.all_scanner.search(code, n)
        parts = [self.scanners[c].search(code, n) for c in categories]
        dist = np.concatenate([d for d, _ in parts])
        rows = np.concatenate([r + self.store.offsets[c] for c, (_, r) in zip(categories, parts)])
        return dist, rows

    def _top_hits(self, dist: np.ndarray, rows: np.ndarray, sims: np.ndarray, k: int) -> list[Hit]:
        """Most similar first; equal cosines fall back to the Hamming distance, then the row."""
        order = np.lexsort((rows, dist, -sims))[:k]
        store = self.store
        return [Hit(int(store.ids[r]), int(store.categories[r]), int(store.labels[r]), float(s), int(d))
                for r, s, d in zip(rows[order], sims[order], dist[order])]
