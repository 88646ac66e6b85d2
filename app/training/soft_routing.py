"""Tuning ``soft`` mode for a model on held-out queries (never the test split).

Soft mode scans the two or three likeliest libraries when the classifier is unsure and
lets the closest match's evidence pick the answering one (app/search.py). How unsure is
unsure (``threshold``) and how much a close match weighs against probability
(``evidence_weight``) depend on the model's calibration and its embedding, so they are
chosen per model: a grid over both, scored by precision@20 of validation queries against
a catalog of the training photos, ties going to fewer scans.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..evaluation.metrics import label_precision
from ..search import SearchEngine, SoftRouting
from ..stores import Snapshot
from ..stores.memory import labelled_store

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
WEIGHTS = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0)


def precision_at_k(engine: SearchEngine, snapshot: Snapshot, probs: np.ndarray, embeddings: np.ndarray,
                   labels: np.ndarray, mode: str, k: int) -> float:
    return float(np.mean([label_precision(engine.search(snapshot, p, e, k, mode).hits, label)
                          for p, e, label in zip(probs, embeddings, labels)]))


def tune_soft_routing(class_names: tuple[str, ...], gallery: tuple[np.ndarray, np.ndarray, np.ndarray],
                      queries: tuple[np.ndarray, np.ndarray, np.ndarray], k: int = 20) -> dict:
    """Best SoftRouting for (probs, embeddings, labels) of gallery and queries; returns it with the grid's scores."""
    _, gallery_emb, gallery_labels = gallery
    probs, embeddings, labels = queries
    store = labelled_store("tuning", class_names, gallery_emb, gallery_labels)
    routed = precision_at_k(SearchEngine(), store, probs, embeddings, labels, "routed", k)
    scores = {}
    for threshold in THRESHOLDS:
        for weight in WEIGHTS:
            soft = SoftRouting(threshold=threshold, evidence_weight=weight)
            scores[(threshold, weight)] = precision_at_k(SearchEngine(soft=soft), store, probs, embeddings, labels,
                                                         "soft", k)
    # Best precision; among equals, the highest threshold (fewest extra scans), then the lightest weight.
    best = max(scores, key=lambda tw: (round(scores[tw], 6), tw[0], -tw[1]))
    chosen = SoftRouting(threshold=best[0], evidence_weight=best[1])
    return {"soft_routing": asdict(chosen),
            "tuning": {"queries": len(labels), "catalog": len(gallery_labels), "k": k,
                       "precision_routed": round(routed, 4), "precision_soft": round(scores[best], 4),
                       "grid": [{"threshold": t, "evidence_weight": w, "precision": round(p, 4)}
                                for (t, w), p in scores.items()]}}
