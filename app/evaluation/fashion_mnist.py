"""The paper's evaluation on Fashion-MNIST: 10,000 test queries against the 60,000-image catalog.

Every query is one ``Catalog.search`` call, as a user's request would be, so the mean
query times include preprocessing, the forward pass, hashing, the scan and the re-rank.
"""
from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..fashion_mnist import FashionMNIST
from ..search import MODES
from .metrics import environment, lsh_recall, run_queries, spread

# The paper's published figures, the anchors our numbers are printed beside.
PAPER = {"classifier_precision": 0.9271, "retrieval_precision": 0.9387, "gallery_images": 300_000,
         "query_ms_routed": 3241.0, "query_ms_direct": 3640.0}


def evaluate(catalog: Catalog, data: FashionMNIST, k: int = 20, limit: int | None = None) -> dict:
    chosen = spread(data.y_test, limit)
    queries, labels = data.x_test[chosen], data.y_test[chosen]
    probs, embeddings = catalog.model(np.stack([catalog.model.prepare(q) for q in queries]))
    report = {
        "catalog": catalog.name,
        "classifier_accuracy": float(np.mean(probs.argmax(1) == labels)),
        "queries": len(queries), "k": k, "catalog_items": len(catalog), "bits": catalog.snapshot.hasher.bits,
        "engine": catalog.snapshot.scan_engine, "catalog_version": catalog.version, "candidates": catalog.engine.candidates,
        "soft_threshold": catalog.engine.soft.threshold, "runtime": catalog.model.runtime,
    }
    for mode in MODES:
        stats = run_queries(catalog, queries, labels, mode, k)
        report[f"precision_at_{k}_{mode}"] = stats.pop("precision")
        report[f"mean_query_ms_{mode}"] = stats.pop("mean_ms")
        report[f"latency_{mode}"] = stats
    report[f"lsh_recall_at_{k}"] = lsh_recall(catalog, probs, embeddings, k)
    report["paper"] = PAPER
    report["environment"] = environment()
    return report


def summary(report: dict) -> str:
    k = report["k"]
    lines = [f"classifier accuracy      {report['classifier_accuracy']:.4f}   (paper {PAPER['classifier_precision']})"]
    for mode in MODES:
        lines.append(f"precision@{k} {mode:<7}     {report[f'precision_at_{k}_{mode}']:.4f}   "
                     f"mean {report[f'mean_query_ms_{mode}']:.2f} ms/query")
    lines.append(f"LSH recall@{k}            {report[f'lsh_recall_at_{k}']:.4f}")
    lines.append(f"catalog: {report['catalog_items']} items, {report['bits']} bits, engine {report['engine']}, "
                 f"model on {report['runtime']}; paper: precision {PAPER['retrieval_precision']}, "
                 f"{PAPER['query_ms_routed']:,.0f} ms/query routed")
    return "\n".join(lines)
