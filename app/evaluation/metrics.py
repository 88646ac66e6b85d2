"""What every evaluation measures the same way: precision and latency per mode, LSH recall, the machine."""
from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..catalog import Catalog
from ..progress import Progress
from ..search import Hit, top_by_cosine


def summarise_ms(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """p50/p99/mean of a list of milliseconds (the shape every latency figure takes in the JSON)."""
    arr = np.asarray(samples_ms, np.float64)
    if not len(arr):
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan"), "samples": 0}
    return {"p50_ms": round(float(np.percentile(arr, 50)), 4), "p99_ms": round(float(np.percentile(arr, 99)), 4),
            "mean_ms": round(float(arr.mean()), 4), "samples": len(arr)}


def label_precision(hits: Sequence[Hit], label: int) -> float:
    """Share of the results whose known label is the query's (the paper's precision); 0 for no results."""
    if not len(hits):
        return 0.0
    return float(np.mean([h.label == label for h in hits]))


def spread(labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of ``limit`` items taken evenly from every category (shuffled by ``seed``); all of them when None.

    ``--limit 20`` then gives two queries of each of 10 categories, not the first 20 of one.
    """
    labels = np.asarray(labels)
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(labels), np.int64)  # each item's place within its category, in shuffled order
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    return np.sort(np.lexsort((labels, rank))[:limit])


def run_queries(catalog: Catalog, queries: Sequence[bytes | Image.Image | np.ndarray], labels: np.ndarray, mode: str,
                k: int) -> dict:
    """Precision@k and latency for one mode, one full ``Catalog.search`` call per query.

    Precision@k is the share of the k results whose known label is the query's (the paper's measure).
    """
    precision, times = [], []
    stages: dict[str, list[float]] = {}
    progress = Progress(len(queries), f"{catalog.name} {mode}", unit="queries")
    for query, label in zip(queries, labels):
        start = time.perf_counter()
        result = catalog.search(query, k=k, mode=mode)
        times.append(1000 * (time.perf_counter() - start))
        precision.append(label_precision(result.hits, label))
        for stage, ms in result.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        progress.update()
    progress.close()
    return {"precision": float(np.mean(precision)), **summarise_ms(times),
            "stage_mean_ms": {s: round(float(np.mean(v)), 4) for s, v in stages.items()}}


def lsh_recall(catalog: Catalog, probs: np.ndarray, embeddings: np.ndarray, k: int) -> float:
    """Routed LSH recall@k against exact cosine in the same library, from stored query outputs.

    Measured apart from the timed queries: the exact reference reads a whole library per
    query, which would evict the model's weights from cache and slow the next timed query.
    """
    overlap = []
    libraries: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # each read once: a Milvus store reads over the network
    progress = Progress(len(embeddings), "LSH recall", unit="queries")
    for p, emb in zip(probs, embeddings):
        result = catalog.engine.search(catalog.snapshot, p, emb, k, "routed")
        category = result.searched[0]
        if category not in libraries:
            ids = catalog.snapshot.ids(category)
            libraries[category] = (ids, catalog.snapshot.items(ids).embeddings)
        exact = top_by_cosine(*libraries[category], emb, k)
        overlap.append(len(np.intersect1d(result.ids, exact)) / len(exact))
        progress.update()
    progress.close()
    return float(np.mean(overlap))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict:
    """Where a measurement was taken (the same shape in every report)."""
    import os

    return {"python": platform.python_version(), "machine": platform.machine(), "processor": cpu_model(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
