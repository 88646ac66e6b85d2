"""Section 4: retrieval quality against code length, on Fashion-MNIST.

The gallery (training images) and the queries (test images) go through the model once;
an index per code length is then assembled in memory from those embeddings. Queries are
answered by ``app.evaluate.run_queries``, i.e. one full ``Searcher.search`` per query as a
user's request would be, so precision and latency are the served ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import load_fashion_mnist
from ..evaluate import exact_top_k, lsh_recall, run_queries, summarise_ms
from ..index_store import GalleryIndex
from ..indexer import assemble
from ..model import Embedder
from ..search import MODES, Searcher
from .profile import TABLE_BITS, K
from .timing import time_each

CORE_STAGES = ("hash", "scan", "rerank")


@dataclass
class Workload:
    """Gallery and query images with their model outputs, computed once per run."""

    embedder: Embedder
    gallery_images: np.ndarray  # (n, 28, 28) uint8
    gallery_labels: np.ndarray  # (n,) int16
    gallery_emb: np.ndarray     # (n, dim) float32
    query_images: np.ndarray
    query_labels: np.ndarray
    query_emb: np.ndarray
    query_probs: np.ndarray

    @classmethod
    def load(cls, embedder: Embedder, gallery: int, queries: int) -> "Workload":
        """The first ``gallery`` training images and the first ``queries`` test images (a fixed subset)."""
        data = load_fashion_mnist()
        g_images, q_images = data.x_train[:gallery], data.x_test[:queries]
        _, g_emb = embedder(g_images)
        q_probs, q_emb = embedder(q_images)
        return cls(embedder, g_images, data.y_train[:gallery].astype(np.int16), g_emb,
                   q_images, data.y_test[:queries].astype(np.int16), q_emb, q_probs)

    def index(self, bits: int, n: int | None = None) -> GalleryIndex:
        """The first ``n`` gallery items, filed under their known labels as ``build_index`` files them."""
        labels = self.gallery_labels[:n]
        return assemble(self.gallery_emb[:n], labels, labels, self.embedder.sha256, bits=bits, seed=0,
                        images=self.gallery_images[:n])

    def searcher(self, bits: int, n: int | None = None) -> Searcher:
        return Searcher(self.embedder, self.index(bits, n))

    @property
    def classifier_accuracy(self) -> float:
        return float(np.mean(self.query_probs.argmax(1) == self.query_labels))


def mode_stats(searcher: Searcher, work: Workload, mode: str) -> dict:
    """``run_queries`` for one mode, plus the search-core share of its latency (hash + scan + re-rank)."""
    stats = run_queries(searcher, work.query_images, work.query_labels, mode, K)
    stats["core_mean_ms"] = round(sum(stats["stage_mean_ms"].get(s, 0.0) for s in CORE_STAGES), 4)
    return stats


def quality_row(searcher: Searcher, work: Workload) -> dict:
    """Precision@K in every mode and the routed search's LSH recall@K."""
    row: dict = {"bits": searcher.index.bits, "latency": {}}
    for mode in MODES:
        stats = mode_stats(searcher, work, mode)
        row[f"precision_at_{K}_{mode}"] = stats.pop("precision")
        row["latency"][mode] = stats
    row[f"lsh_recall_at_{K}"] = lsh_recall(searcher, work.query_probs, work.query_emb, K)
    return row


def exact_anchor(searcher: Searcher, work: Workload, max_seconds: float) -> dict:
    """Latency of exact cosine top-K within the routed library: the recall-1.0 point of the plot."""
    cache: dict = {}
    categories = work.query_probs.argmax(1)
    for c in range(len(searcher.engines)):
        exact_top_k(searcher, work.query_emb[0], c, K, cache)
    samples = time_each(lambda i: exact_top_k(searcher, work.query_emb[i], int(categories[i]), K, cache),
                        list(range(len(categories))), max_seconds)
    return {"method": "exact cosine (routed library, float32 matmul)", f"lsh_recall_at_{K}": 1.0, **summarise_ms(samples)}


def query_subset(n: int, total: int = 10_000) -> str:
    return f"all {total:,} test images" if n >= total else f"the first {n:,} of the {total:,} test images (fixed)"


def run_quality(work: Workload, bits_list: tuple[int, ...], anchor_seconds: float) -> dict:
    """One row per code length; the exact-cosine anchor is timed on the served code length's searcher."""
    rows, anchor = [], {}
    for bits in bits_list:
        searcher = work.searcher(bits)
        rows.append(quality_row(searcher, work))
        if bits == TABLE_BITS:
            anchor = exact_anchor(searcher, work, anchor_seconds)
    return {"quality_by_bits": rows,
            "quality": {"gallery": len(work.gallery_labels), "queries": len(work.query_labels), "k": K,
                        "query_subset": query_subset(len(work.query_labels)),
                        "classifier_accuracy": round(work.classifier_accuracy, 4),
                        "exact_anchor": anchor}}
