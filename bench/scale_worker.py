"""A stand-in serving worker for the scale benchmark: open a catalog's store as the app does, search it, wait.

``python -m bench.scale_worker URI [--touch] [--queries Q]`` opens the ``photos`` catalog at
URI (verified, as a worker opens it), runs Q routed and Q direct searches of synthetic
queries through the production engine, prints one JSON line (p50/p99 per mode), then
waits on stdin so the parent can read its memory (/proc/PID/smaps_rollup). ``--touch``
first reads every embedding through the worker's memory map: a worker that has served
long enough to have touched the whole catalog, the case where two workers could hold two
copies of it (they share one: the page cache).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from app.evaluation.metrics import summarise_ms
from app.search import SearchEngine
from app.stores import open_store

from .scale_build import DIM
from .synthetic import Generator


def queries(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Queries from the catalog's distribution (its generator's centres), not items of it."""
    generator = Generator(seed=0, dim=DIM)
    generator.rng = np.random.default_rng(12_345)
    sample = generator.sample(n, None)
    return sample.probs, sample.embeddings


def touch(snapshot) -> int:
    """Read every embedding page through the snapshot's memory maps (HDF5); returns the bytes touched."""
    total = 0
    for part in getattr(snapshot, "parts", []):
        for start in range(0, len(part.embeddings), 65_536):
            part.embeddings[start:start + 65_536].sum(dtype=np.float32)  # through the map: resident in this process
        total += part.embeddings.nbytes
    return total


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale_worker", description=__doc__.splitlines()[0])
    p.add_argument("uri")
    p.add_argument("--touch", action="store_true")
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args()
    start = time.perf_counter()
    snapshot = open_store(args.uri, "photos").snapshot()
    opened = time.perf_counter() - start
    touched = touch(snapshot) if args.touch else 0
    engine = SearchEngine()
    probs, embs = queries(args.queries + 5)
    report = {"store": args.uri, "items": len(snapshot), "open_s": round(opened, 2), "touched_bytes": touched}
    for mode in ("routed", "direct"):
        for i in range(5):  # warm-up
            engine.search(snapshot, probs[i], embs[i], 20, mode)
        times = []
        for i in range(5, args.queries + 5):
            t = time.perf_counter()
            engine.search(snapshot, probs[i], embs[i], 20, mode)
            times.append(1000 * (time.perf_counter() - t))
        report[mode] = summarise_ms(times)
    print(json.dumps(report), flush=True)
    sys.stdin.readline()  # the parent reads our memory, then closes stdin


if __name__ == "__main__":
    main()
