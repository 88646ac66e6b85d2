"""Class-routed search over one catalog snapshot: hash, scan the routed libraries, re-rank by cosine.

Modes:
- ``routed`` (the paper): only the predicted category's library is scanned.
- ``direct`` (the paper's Table 4 baseline): every item is scanned.
- ``soft`` (beyond the paper): when the classifier is unsure, the two or three most likely
  categories are scanned and the library whose closest match best backs the classifier's
  probability answers, so one wrong guess does not sink the query.

Routing only ever lands on categories the catalog has items in: the probabilities are
renormalised over those, so a shop without skirts answers a skirt photo with its likeliest
other category (and says so), never with nothing. In every mode the store's Hamming scan
picks ``candidates`` items per scanned library and their stored embeddings re-rank them by
exact cosine, the similarity users see. The engine takes the model's outputs and a store
snapshot (app/stores/), never images or rows: the catalog (app/catalog.py) runs the model.

A caller may also name the categories to search (``categories=[c]``): a shopper who sees
a shirt taken for a T-shirt re-runs the same query in Shirt, whatever the mode says. Only
categories the catalog has items in can be named.
"""
from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from .hashing import cosine_similarity
from .stores import Items, Snapshot

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
    """One result, with everything a response shows of it."""

    id: int
    category: int      # the library the item is filed under
    label: int         # its known category, -1 when unknown
    similarity: float  # cosine of the embeddings, in [0, 1]
    hamming: int       # Hamming distance of the codes
    hash: str          # content hash of its picture (image URLs carry it)
    path: str          # its picture in the catalog's source (a photo file for photo catalogs)


@dataclass
class SearchResult:
    catalog: str
    version: int               # the catalog version every hit comes from
    mode: str
    probabilities: np.ndarray  # (num_classes,) of the query, as the model gave them
    searched: list[int]        # categories scanned
    hits: list[Hit]
    routing: np.ndarray        # probabilities over the categories that have items (what routing used)
    timings_ms: dict[str, float] = field(default_factory=dict)
    chosen: bool = False       # the caller named the categories searched (the mode did not route)
    embedding: np.ndarray | None = None  # the query's embedding: with ``probabilities``, all a search again needs

    @property
    def category(self) -> int:
        """The model's likeliest category (which the catalog may not stock: see ``routing``)."""
        return int(self.probabilities.argmax())

    def top_categories(self, n: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(-self.probabilities, kind="stable")[:n]
        return [(int(c), float(self.probabilities[c])) for c in order]

    @property
    def ids(self) -> np.ndarray:
        return np.array([h.id for h in self.hits], np.int64)


def routing_probabilities(probs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The model's probabilities renormalised over the categories that have items (zero elsewhere)."""
    stocked = counts > 0
    p = np.where(stocked, np.asarray(probs, np.float64), 0.0)
    total = p.sum()
    if total <= 0:  # the model puts (numerically) nothing on what the catalog has: spread evenly
        p = stocked.astype(np.float64)
        total = max(p.sum(), 1.0)
    return (p / total).astype(np.float32)


class SearchEngine:
    """Routing and re-ranking over any store snapshot; stateless, so one per model serves every version."""

    def __init__(self, candidates: int = 256, soft: SoftRouting = SoftRouting()):
        self.candidates, self.soft = candidates, soft

    def categories_to_search(self, routing: np.ndarray, mode: str) -> list[int] | None:
        """routed: the top category; direct: None (all); soft: the top few when the classifier is unsure."""
        if mode == "direct":
            return None
        order = [int(c) for c in np.argsort(-routing, kind="stable") if routing[c] > 0]
        if not order:
            return []
        if mode == "routed" or routing[order[0]] >= self.soft.threshold:
            return order[:1]
        return [c for c in order[: self.soft.max_categories] if routing[c] >= self.soft.min_probability] or order[:1]

    def search(self, snapshot: Snapshot, probs: np.ndarray, emb: np.ndarray, k: int = DEFAULT_K,
               mode: str = DEFAULT_MODE, exclude: Collection[int] = (),
               categories: Collection[int] | None = None) -> SearchResult:
        """Hash, scan and re-rank one query's model outputs; ``exclude`` keeps those ids out of the hits.

        ``categories`` (indices) replaces the mode's routing: exactly those libraries are
        scanned and their items ranked together by cosine. ValueError names a category the
        catalog has no items in.
        """
        check_query(k, mode)
        counts = snapshot.counts()
        chosen = None if categories is None else check_categories(categories, counts, snapshot.manifest.class_names)
        t0 = time.perf_counter()
        code = snapshot.hasher.hash(emb)[0]
        t1 = time.perf_counter()
        routing = routing_probabilities(probs, counts)
        searched = self.categories_to_search(routing, mode) if chosen is None else chosen
        found = snapshot.candidates(code, searched, max(self.candidates, k + len(exclude)))
        t2 = time.perf_counter()
        if exclude and len(found):
            found = found.take(np.flatnonzero(~np.isin(found.ids, np.fromiter(exclude, np.int64))))
        sims = cosine_similarity(emb, found.embeddings)
        if chosen is None and mode == "soft" and searched and len(searched) > 1 and len(found):
            keep = np.flatnonzero(found.categories == self._best_supported(routing, sims, found, searched))
            found, sims = found.take(keep), sims[keep]
        hits = top_hits(found, sims, k)
        t3 = time.perf_counter()
        timings = {s: round(1000 * (b - a), 3) for s, a, b in zip(("hash", "scan", "rerank"), (t0, t1, t2),
                                                                   (t1, t2, t3))}
        if searched is None:
            searched = [int(c) for c in np.flatnonzero(counts)]
        return SearchResult(snapshot.manifest.catalog, snapshot.version, mode, np.asarray(probs), searched, hits,
                            routing, timings, chosen=chosen is not None,
                            embedding=np.asarray(emb))

    def _best_supported(self, routing: np.ndarray, sims: np.ndarray, found: Items, searched: list[int]) -> int:
        """The searched category with the best mix of classifier belief and closest catalog match."""
        best = [sims[found.categories == c].max(initial=0.0) for c in searched]
        scores = np.log(np.maximum(routing[searched], 1e-12)) + self.soft.evidence_weight * np.asarray(best)
        return searched[int(np.argmax(scores))]


def check_categories(categories: Collection[int], counts: np.ndarray, names: tuple[str, ...]) -> list[int]:
    """Named categories as sorted unique indices; ValueError for none, or for one without items."""
    chosen = sorted({int(c) for c in categories})
    if not chosen:
        raise ValueError("name at least one category to search")
    for c in chosen:
        if not 0 <= c < len(counts):
            raise ValueError(f"there is no category {c}; there are {len(counts)}")
        if counts[c] == 0:
            stocked = ", ".join(n for n, m in zip(names, counts) if m > 0)
            raise ValueError(f"this catalog has no {names[c]} items; it has {stocked}")
    return chosen


def top_hits(found: Items, sims: np.ndarray, k: int) -> list[Hit]:
    """Most similar first; equal cosines fall back to the Hamming distance, then the id."""
    hamming = found.hamming if found.hamming is not None else np.zeros(len(found), np.int32)
    order = np.lexsort((found.ids, hamming, -sims))[:k]
    return [Hit(int(found.ids[r]), int(found.categories[r]), int(found.labels[r]), float(sims[r]), int(hamming[r]),
                found.hashes[r], found.paths[r]) for r in order]


def exact_top(snapshot: Snapshot, emb: np.ndarray, category: int, k: int) -> np.ndarray:
    """Item ids of the exact-cosine top ``k`` within one library: the reference LSH recall is measured by."""
    ids = snapshot.ids(category)
    return ids if not len(ids) else top_by_cosine(ids, snapshot.items(ids).embeddings, emb, k)


def top_by_cosine(ids: np.ndarray, embeddings: np.ndarray, emb: np.ndarray, k: int) -> np.ndarray:
    """The ids of the ``k`` rows of ``embeddings`` most similar to ``emb`` (in no particular order)."""
    sims = cosine_similarity(emb, embeddings)
    n = min(k, len(sims))
    top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
    return ids[top]
