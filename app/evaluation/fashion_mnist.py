"""The paper's evaluation on Fashion-MNIST: 10,000 test queries against the 60,000-image gallery.

Every query is one ``Searcher.search`` call, as a user's request would be, so the mean
query times include preprocessing, the forward pass, hashing, the scan and the re-rank.
"""
from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .data import FashionMNIST
from .progress import Progress
from .search import MODES, Searcher

# The paper's published figures, the anchors our numbers are printed beside.
PAPER = {"classifier_precision": 0.9271, "retrieval_precision": 0.9387, "gallery_images": 300_000,
         "query_ms_routed": 3241.0, "query_ms_direct": 3640.0}


def exact_top_k(searcher: Searcher, emb: np.ndarray, category: int, k: int, cache: dict) -> np.ndarray:
    """Item ids of the exact-cosine top ``k`` within one category library (LSH recall's reference)."""
    a, b = searcher.offsets[category], searcher.offsets[category + 1]
    if category not in cache:
        cache[category] = searcher.embeddings[a:b].astype(np.float32)
    sims = cache[category] @ emb
    n = min(k, len(sims))
    top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
    return searcher.ids[a + top]


def summarise_ms(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """p50/p99/mean of a list of milliseconds (the shape every latency figure takes in the JSON)."""
    arr = np.asarray(samples_ms, np.float64)
    if not len(arr):
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan"), "samples": 0}
    return {"p50_ms": round(float(np.percentile(arr, 50)), 4), "p99_ms": round(float(np.percentile(arr, 99)), 4),
            "mean_ms": round(float(arr.mean()), 4), "samples": int(len(arr))}


def run_queries(searcher: Searcher, queries: np.ndarray, labels: np.ndarray, mode: str, k: int) -> dict:
    """Precision@k and latency for one mode, one full ``search`` call per query."""
    precision, times = [], []
    stages: dict[str, list[float]] = {}
    progress = Progress(len(queries), f"evaluate {mode}", unit="queries")
    for image, label in zip(queries, labels):
        start = time.perf_counter()
        result = searcher.search(image, k=k, mode=mode)
        times.append(1000 * (time.perf_counter() - start))
        ids = np.array([h.id for h in result.hits])
        precision.append(float(np.mean(searcher.index.labels[ids] == label)))
        for stage, ms in result.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        progress.update()
    progress.close()
    return {"precision": float(np.mean(precision)), **summarise_ms(times),
            "stage_mean_ms": {s: round(float(np.mean(v)), 4) for s, v in stages.items()}}


def lsh_recall(searcher: Searcher, probs: np.ndarray, embeddings: np.ndarray, k: int) -> float:
    """Routed LSH recall@k against exact cosine in the same library, from stored query outputs.

    Measured apart from the timed queries: the exact reference reads a whole library per
    query, which would evict the model's weights from cache and slow the next timed query.
    """
    cache: dict = {}
    overlap = []
    progress = Progress(len(embeddings), "LSH recall", unit="queries")
    for p, emb in zip(probs, embeddings):
        result = searcher.search_embedding(p, emb, k, "routed")
        exact = exact_top_k(searcher, emb, result.searched[0], k, cache)
        overlap.append(len(np.intersect1d([h.id for h in result.hits], exact)) / len(exact))
        progress.update()
    progress.close()
    return float(np.mean(overlap))


def evaluate(searcher: Searcher, data: FashionMNIST, k: int = 20, limit: int | None = None) -> dict:
    queries, labels = data.x_test[:limit], data.y_test[:limit]
    probs, embeddings = searcher.embedder(queries)
    report = {
        "classifier_accuracy": float(np.mean(probs.argmax(1) == labels)),
        "queries": len(queries), "k": k, "index_items": len(searcher.index), "bits": searcher.index.bits,
        "engine": searcher.engine, "candidates": searcher.candidates, "soft_threshold": searcher.soft_threshold,
    }
    for mode in MODES:
        stats = run_queries(searcher, queries, labels, mode, k)
        report[f"precision_at_{k}_{mode}"] = stats.pop("precision")
        report[f"mean_query_ms_{mode}"] = stats.pop("mean_ms")
        report[f"latency_{mode}"] = stats
    report[f"lsh_recall_at_{k}"] = lsh_recall(searcher, probs, embeddings, k)
    report["paper"] = PAPER
    report["environment"] = {"python": platform.python_version(), "machine": platform.machine(),
                             "processor": cpu_model(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    return report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(report: dict) -> str:
    k = report["k"]
    lines = [f"classifier accuracy      {report['classifier_accuracy']:.4f}   (paper {PAPER['classifier_precision']})"]
    for mode in MODES:
        lines.append(f"precision@{k} {mode:<7}     {report[f'precision_at_{k}_{mode}']:.4f}   "
                     f"mean {report[f'mean_query_ms_{mode}']:.2f} ms/query")
    lines.append(f"LSH recall@{k}            {report[f'lsh_recall_at_{k}']:.4f}")
    lines.append(f"index: {report['index_items']} items, {report['bits']} bits, engine {report['engine']}; "
                 f"paper: precision {PAPER['retrieval_precision']}, {PAPER['query_ms_routed']:,.0f} ms/query routed")
    return "\n".join(lines)


def write_report(report: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
