"""Section 4: retrieval quality against code length, on Fashion-MNIST.

The gallery (training images) and the queries (test images) went through the model once
(``Workload``); a store per code length is assembled in memory from those embeddings.
Queries are answered by ``app.evaluation.metrics.run_queries``, i.e. one full
``Catalog.search`` per query as a user's request would be, so precision and latency are
the served ones.
"""
from __future__ import annotations

from app.catalog import Catalog
from app.evaluation.metrics import lsh_recall, run_queries, summarise_ms
from app.search import MODES, exact_top

from .profile import TABLE_BITS, K
from .timing import time_each
from .workload import Workload

CORE_STAGES = ("hash", "scan", "rerank")


def mode_stats(catalog: Catalog, work: Workload, mode: str) -> dict:
    """``run_queries`` for one mode, plus the search-core share of its latency (hash + scan + re-rank)."""
    stats = run_queries(catalog, work.query_images, work.query_labels, mode, K)
    stats["core_mean_ms"] = round(sum(stats["stage_mean_ms"].get(s, 0.0) for s in CORE_STAGES), 4)
    return stats


def quality_row(catalog: Catalog, work: Workload) -> dict:
    """Precision@K in every mode and the routed search's LSH recall@K."""
    row: dict = {"bits": catalog.snapshot.hasher.bits, "latency": {}}
    for mode in MODES:
        stats = mode_stats(catalog, work, mode)
        row[f"precision_at_{K}_{mode}"] = stats.pop("precision")
        row["latency"][mode] = stats
    row[f"lsh_recall_at_{K}"] = lsh_recall(catalog, work.query_probs, work.query_emb, K)
    return row


def exact_anchor(catalog: Catalog, work: Workload, max_seconds: float) -> dict:
    """Latency of exact cosine top-K within the routed library (``app.search.exact_top``): recall 1.0."""
    categories = work.query_probs.argmax(1)
    samples = time_each(lambda i: exact_top(catalog.snapshot, work.query_emb[i], int(categories[i]), K),
                        list(range(len(categories))), max_seconds)
    return {"method": "exact cosine (routed library, float16 store, float32 matmul)", f"lsh_recall_at_{K}": 1.0,
            **summarise_ms(samples)}


def query_subset(n: int, total: int = 10_000) -> str:
    return f"all {total:,} test images" if n >= total else f"the first {n:,} of the {total:,} test images (fixed)"


def run_quality(work: Workload, bits_list: tuple[int, ...], anchor_seconds: float) -> dict:
    """One row per code length; the exact-cosine anchor is timed on the served code length's catalog."""
    rows, anchor = [], {}
    for bits in bits_list:
        catalog = work.catalog(bits)
        rows.append(quality_row(catalog, work))
        if bits == TABLE_BITS:
            anchor = exact_anchor(catalog, work, anchor_seconds)
    return {"quality_by_bits": rows,
            "quality": {"gallery": len(work.gallery_labels), "queries": len(work.query_labels), "k": K,
                        "query_subset": query_subset(len(work.query_labels)),
                        "classifier_accuracy": round(work.classifier_accuracy, 4),
                        "runtime": work.model.runtime, "model": work.model.path.name,
                        "exact_anchor": anchor}}
