"""Section 3: building the Fashion-MNIST index from scratch: images/s and peak memory.

The build runs in a child process (``python -m app.bench.indexing``) so its peak resident
memory is its own, not the benchmark's; it reports one JSON line on stdout, and its
progress bar goes to stderr as usual.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..config import ROOT
from .timing import peak_rss_bytes


def build(model: Path, images: int, out: Path) -> dict:
    """Feature extraction, hashing and the HDF5 write of the first ``images`` training images, timed."""
    from ..gallery import FashionMNISTGallery
    from ..index_store import write_index
    from ..indexer import build_index
    from ..model import Embedder

    start = time.perf_counter()
    embedder = Embedder(model)
    gallery = FashionMNISTGallery("train")
    gallery.images, gallery.labels = gallery.images[:images], gallery.labels[:images]
    loaded = time.perf_counter()
    index = build_index(embedder, gallery)
    built = time.perf_counter()
    write_index(index, out)
    written = time.perf_counter()
    return {"images": len(index), "load_seconds": round(loaded - start, 2), "build_seconds": round(built - loaded, 2),
            "write_seconds": round(written - built, 2), "items_per_s": round(len(index) / (written - loaded), 1),
            "forward_items_per_s": index.meta["items_per_s"], "file_bytes": out.stat().st_size,
            "peak_rss_bytes": peak_rss_bytes()}


def run_indexing(model: Path, images: int) -> dict:
    """The child's figures; items/s counts build and write, not loading TensorFlow and the model."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "app.bench.indexing", "--model", str(model), "--images", str(images),
               "--out", str(Path(tmp) / "index.h5")]
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    return {"index_items_per_s": stats["items_per_s"], "indexing": stats}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="time one index build (run by the benchmark)")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--images", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    print(json.dumps(build(args.model, args.images, args.out)), flush=True)


if __name__ == "__main__":
    main()
