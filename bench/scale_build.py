"""One build (or add) of a synthetic photo-sized catalog, in its own process so its peak memory is its own.

``python -m bench.scale_build URI N [--add M] [--batch B]`` writes N synthetic items with
2,560-d embeddings (the photo model's width) as the ``photos`` catalog of the store at URI,
made with the real photo model's manifest so the app can serve it, or adds M more to it.
It prints one JSON line: items/s, seconds, and the process's peak memory: ``peak_rss_mb``
(VmHWM: everything resident, file pages it mapped included) and ``peak_anon_mb`` (the
largest anonymous memory seen, sampled every 50 ms: what the build itself allocates).
"""
from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

from app.catalog import BUILTIN, model_path
from app.runtime import open_model
from app.settings import Settings
from app.stores import Manifest, NewItems, open_store

from .synthetic import Generator

DIM = 2560  # the photo embedding when the scale figures were measured (512-d now: upper bounds)
BATCH = 8_192     # items the indexer would hand a writer at once (its own batches are 256)


class PeakMemory:
    """The largest RssAnon of this process, sampled on a thread (the kernel keeps a peak only for all of RSS)."""

    def __init__(self, every: float = 0.05):
        self.peak_anon_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    @staticmethod
    def status() -> dict[str, float]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) / 1024
        return out

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak_anon_mb = max(self.peak_anon_mb, self.status()["RssAnon"])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        now = self.status()
        return {"peak_rss_mb": round(now["VmHWM"], 1),
                "peak_anon_mb": round(max(self.peak_anon_mb, now["RssAnon"]), 1)}


def photo_manifest(settings: Settings) -> Manifest:
    """The built-in photo catalog's identity (its real model), so the app serves the synthetic items as photos."""
    model = open_model(model_path(settings, BUILTIN["photos"].model))
    return Manifest(catalog="photos", model_file=model.path.name, model_sha256=model.sha256,
                    class_names=model.class_names, source="synthetic", bits=256)


def batches(n: int, seed: int, start: int, batch: int):
    generator = Generator(seed=seed, dim=DIM)
    for first in range(0, n, batch):
        size = min(batch, n - first)
        sample = generator.sample(size, None)
        paths = [f"synthetic/{start + first + i}.jpg" for i in range(size)]
        yield NewItems(sample.embeddings, sample.labels, sample.labels, ["0" * 16] * size, paths)


def run(uri: str, n: int, add: int, batch: int) -> dict:
    settings = Settings.from_env()
    store = open_store(uri, "photos")
    memory = PeakMemory()
    start = time.perf_counter()
    if add:
        writer = store.writer()
        items = batches(add, seed=1, start=n, batch=batch)
        count = add
    else:
        writer = store.rebuild(photo_manifest(settings), seed=0)
        items = batches(n, seed=0, start=0, batch=batch)
        count = n
    for chunk in items:
        writer.add(chunk)
    queued = time.perf_counter()
    version = writer.commit()
    seconds = time.perf_counter() - start
    return {"store": store.uri, "operation": "add" if add else "build", "items": count, "version": version,
            "seconds": round(seconds, 1), "commit_seconds": round(time.perf_counter() - queued, 1),
            "items_per_s": round(count / seconds, 1), "batch": batch, **memory.stop()}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale_build", description=__doc__.splitlines()[0])
    p.add_argument("uri")
    p.add_argument("n", type=int, help="items in the build (with --add: the catalog's size before)")
    p.add_argument("--add", type=int, default=0, help="add this many items to the catalog instead")
    p.add_argument("--batch", type=int, default=BATCH)
    args = p.parse_args()
    print(json.dumps(run(args.uri, args.n, args.add, args.batch)), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
