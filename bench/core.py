"""Section 1: search-core scaling on synthetic galleries, without a model.

Side by side on the very same codes and embeddings: our routed and direct search
(``SearchEngine.search``: hash, Hamming scan, float16 re-rank), the FAISS scanner on its
own (``app.scan.FaissScanner``, the engine our scan runs on), the NumPy popcount scanner
(``app.scan.NumpyScanner``) and exact float cosine by NumPy matmul. The flat baselines do
not depend on how items are split into categories, so they are timed on the uniform split only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.evaluation.metrics import summarise_ms
from app.progress import Progress
from app.scan import FaissScanner, NumpyScanner

from .profile import TABLE_BITS, K, Profile
from .synthetic import SPLITS, Generator, SyntheticIndex, SyntheticSet, synthetic_engine
from .timing import WARMUP, settled_rss, throughput, time_each

BATCH = 64
BASELINE_SPLIT = "uniform"


@dataclass
class Method:
    name: str
    one: Callable[[int], object]              # one query, by its row in the query set
    many: Callable[[np.ndarray], object]      # a batch of query rows
    bytes_per_item: float
    stages: list[dict] = field(default_factory=list)  # per-query stage timings, for our engine only


def engine_method(engine: SyntheticIndex, queries: SyntheticSet, mode: str, bytes_per_item: float) -> Method:
    """Our search as served, minus decoding, preprocessing and the forward pass."""
    def run(i: int) -> dict:
        return engine.search(queries.probs[i], queries.embeddings[i], K, mode).timings_ms

    method = Method(mode, lambda i: method.stages.append(run(i)), lambda rows: [run(i) for i in rows],
                    bytes_per_item)
    return method


def exact_top_k(matrix: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` largest cosines per query row, best first (brute-force float reference)."""
    sims = q @ matrix.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1)
    return np.take_along_axis(top, order, 1)


def baseline_methods(engine: SyntheticIndex, gallery: SyntheticSet, queries: SyntheticSet) -> list[Method]:
    """The FAISS and NumPy scanners and exact cosine over every item, on the codes the store holds."""
    codes, n = engine.snapshot.parts[0].codes, engine.candidates
    qcodes = engine.snapshot.hasher.hash(queries.embeddings)
    flat, scan = FaissScanner(codes), NumpyScanner(codes)
    emb, qemb = gallery.embeddings, queries.embeddings
    return [
        Method("faiss_flat", lambda i: flat.search(qcodes[i], n), lambda rows: flat.flat.search(qcodes[rows], n),
               float(flat.flat.code_size)),
        Method("numpy_scan", lambda i: scan.search(qcodes[i], n),
               lambda rows: [scan.search(qcodes[i], n) for i in rows], float(codes.shape[1])),
        Method("exact_cosine", lambda i: exact_top_k(emb, qemb[i:i + 1], K),
               lambda rows: exact_top_k(emb, qemb[rows], K), float(emb.shape[1] * emb.itemsize)),
    ]


def measure(method: Method, n_queries: int, profile: Profile) -> dict:
    """One row: single-query percentiles and batch-of-64 throughput."""
    samples = time_each(method.one, list(range(n_queries)), profile.core_seconds)
    batches = [np.arange(b * BATCH, (b + 1) * BATCH) % n_queries for b in range(profile.core_batches)]
    row = {"method": method.name, **summarise_ms(samples),
           "qps_batch": throughput(method.many, batches, BATCH, profile.core_seconds),
           "bytes_per_item": round(method.bytes_per_item, 1)}
    if method.stages:
        timed = method.stages[-len(samples):]
        row["stage_p50_ms"] = {s: round(float(np.median([t[s] for t in timed])), 4) for s in timed[0]}
    return row


def store_array_bytes(engine: SyntheticIndex) -> int:
    """Bytes of the arrays the store itself holds (codes, float16 embeddings, ids, categories, labels, ...)."""
    return sum(arr.nbytes for part in engine.snapshot.parts for _, arr in part.columns())


def measure_config(gallery: SyntheticSet, queries: SyntheticSet, bits: int, split: str,
                   profile: Profile) -> tuple[list[dict], dict]:
    """All methods for one (n, split, bits); the engine's resident memory is the RSS its store and scanners added."""
    n = len(gallery.labels)
    before = settled_rss()
    engine = synthetic_engine(gallery, bits)
    per_item = (settled_rss() - before) / n
    methods = [engine_method(engine, queries, mode, per_item) for mode in ("routed", "direct")]
    if split == BASELINE_SPLIT:
        methods += baseline_methods(engine, gallery, queries)
    rows = [{"n": n, "bits": bits, "split": split, **measure(m, len(queries.labels), profile)} for m in methods]
    memory = {"n": n, "bits": bits, "split": split, "rss_bytes_per_item": round(per_item, 1),
              "index_array_bytes_per_item": round(store_array_bytes(engine) / n, 1)}
    return rows, memory


def scan_ratios(rows: list[dict]) -> list[dict]:
    """The direct search's scan stage and the NumPy scanner, each against the FAISS scanner alone.

    Our scan runs on FAISS, so ``ours_vs_faiss`` is the engine's own overhead (about 1.0);
    ``numpy_vs_faiss`` is what FAISS buys over the NumPy fallback.
    """
    by = {(r["n"], r["bits"], r["method"]): r for r in rows if r["split"] == BASELINE_SPLIT}
    out = []
    for (n, bits, method), faiss_row in sorted(by.items()):
        if method != "faiss_flat":
            continue
        ours, numpy_row = by[(n, bits, "direct")]["stage_p50_ms"]["scan"], by[(n, bits, "numpy_scan")]["p50_ms"]
        out.append({"n": n, "bits": bits, "ours_scan_p50_ms": ours, "faiss_p50_ms": faiss_row["p50_ms"],
                    "numpy_p50_ms": numpy_row, "ours_vs_faiss": round(ours / faiss_row["p50_ms"], 3),
                    "numpy_vs_faiss": round(numpy_row / faiss_row["p50_ms"], 3)})
    return out


def run_core(profile: Profile) -> dict:
    """Every (n, split, bits) of the profile; the largest uniform 256-bit gallery gives ram_bytes_per_item."""
    rows, memory = [], []
    generator = Generator(seed=0)
    synthetic_engine(generator.sample(1_000, None), TABLE_BITS)  # keeps one-off allocations out of the RSS figures
    progress = Progress(len(profile.core_n) * len(SPLITS) * len(profile.core_bits), "search core", unit="configs")
    for n in profile.core_n:
        for split, share in SPLITS.items():
            gallery = generator.sample(n, share)
            queries = generator.sample(max(profile.core_queries, BATCH) + WARMUP, share)
            for bits in profile.core_bits:
                config_rows, config_memory = measure_config(gallery, queries, bits, split, profile)
                rows += config_rows
                memory.append(config_memory)
                progress.update()
            del gallery
    progress.close()
    largest = max((m for m in memory if m["bits"] == TABLE_BITS and m["split"] == BASELINE_SPLIT), key=lambda m: m["n"])
    return {"core": rows, "core_memory": memory, "core_scan_ratio": scan_ratios(rows),
            "ram_bytes_per_item": largest["rss_bytes_per_item"]}
