"""Section 3: building catalog stores from scratch on the serving runtime (LiteRT): images/s and peak memory.

Each build runs in a child process (``python -m bench.indexing``) so its peak resident
memory is its own, not the benchmark's; it reports one JSON line on stdout, and its
progress bar goes to stderr as usual. The build is ``app.indexer.build`` with the
threads ``python -m app index ensure`` gives it, over the first images of a built-in
catalog's source (Fashion-MNIST training images; catalog photos spread over the categories).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.catalog import BUILTIN, model_path
from app.indexer import build as build_catalog
from app.runtime import LiteRTModel
from app.settings import ROOT, Settings, cpu_count
from app.sources import FashionMNISTSource, FolderSource, open_source
from app.stores import Hdf5Store

from .profile import TABLE_BITS
from .timing import peak_rss_bytes
from .uploads import spread


def first_images(source: FashionMNISTSource | FolderSource, n: int) -> None:
    """Keep ``n`` items of a source: the first Fashion-MNIST images, or photos spread over the categories."""
    if isinstance(source, FashionMNISTSource):
        source.images, source.labels = source.images[:n], source.labels[:n]
    else:
        source.files = [source.files[int(i)] for i in spread(n, len(source.files))]


def build(catalog: str, images: int, out: Path) -> dict:
    """Decoding, preparation, the forward pass, hashing and the HDF5 write of ``images`` items, timed."""
    spec = BUILTIN[catalog]
    start = time.perf_counter()
    threads = cpu_count()
    model = LiteRTModel(model_path(Settings.from_env(), spec.model), threads=threads)
    source = open_source(spec.source)
    first_images(source, images)
    loaded = time.perf_counter()
    report = build_catalog(Hdf5Store(out, catalog), model, source, catalog, bits=TABLE_BITS)
    written = time.perf_counter()
    return {"catalog": catalog, "images": report.items, "runtime": model.runtime, "threads": threads,
            "load_seconds": round(loaded - start, 2), "build_seconds": round(report.seconds, 2),
            "write_seconds": round(written - loaded - report.seconds, 2),
            "items_per_s": round(report.items / (written - loaded), 1), "forward_items_per_s": report.items_per_s,
            "file_bytes": sum(p.stat().st_size for p in out.glob("*.h5")), "peak_rss_bytes": peak_rss_bytes()}


def build_in_child(catalog: str, images: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bench.indexing", "--catalog", catalog, "--images", str(images),
               "--out", str(Path(tmp) / catalog)]
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_indexing(fashion_images: int, photo_images: int) -> dict:
    """Both built-in catalogs; items/s counts the build and the write, not loading the model and the data."""
    fashion = build_in_child("fashion-mnist", fashion_images)
    photos = build_in_child("photos", photo_images)
    return {"index_items_per_s": fashion["items_per_s"], "indexing": fashion,
            "photo_index_items_per_s": photos["items_per_s"], "indexing_photos": photos}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="time one store build (run by the benchmark)")
    p.add_argument("--catalog", choices=tuple(BUILTIN), required=True)
    p.add_argument("--images", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    print(json.dumps(build(args.catalog, args.images, args.out)), flush=True)


if __name__ == "__main__":
    main()
