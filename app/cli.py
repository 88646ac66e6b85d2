"""The command line: data, train, index build/info/verify, search, evaluate, photo-study, bench, serve.

Every command has ``--help``. Known failures (missing data, model or index, a bad
image) print one clear line and exit with status 2 instead of a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import config


def cmd_data(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import CLASS_NAMES, candidate_dirs, load_fashion_mnist

    print("Looking in: " + ", ".join(str(d) for d in candidate_dirs()) + ", then the Keras cache/download")
    data = load_fashion_mnist(download=not args.no_download)
    print(f"Fashion-MNIST from {data.source}: {len(data.x_train)} training + {len(data.x_test)} test images, "
          f"{data.x_train.shape[1]}x{data.x_train.shape[2]} greyscale")
    train_counts, test_counts = np.bincount(data.y_train, minlength=10), np.bincount(data.y_test, minlength=10)
    for c, name in enumerate(CLASS_NAMES):
        print(f"  {c} {name:<12} train {train_counts[c]:>5}  test {test_counts[c]:>5}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train, train_vgg16

    if args.backbone == "fashion16":
        train(Path(args.out), epochs=args.epochs or 20, batch_size=args.batch_size or 128, seed=args.seed,
              limit=args.limit)
        return 0
    if not args.data:
        raise ValueError("--backbone vgg16 needs --data DIR: photos sorted into sub-folders named after categories")
    train_vgg16(Path(args.out), Path(args.data), weights=args.vgg_weights, input_size=args.input_size,
                epochs=args.epochs or 5, batch_size=args.batch_size or 32, seed=args.seed)
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    from .index_store import write_index
    from .indexer import build_index, open_gallery
    from .model import Embedder

    embedder = Embedder(args.model)
    gallery = open_gallery(args.gallery)
    index = build_index(embedder, gallery, bits=args.bits, seed=args.seed, batch_size=args.batch_size)
    path = write_index(index, args.out)
    skipped = getattr(gallery, "skipped", [])
    for rel, why in skipped[:10]:
        print(f"skipped {rel}: {why}", file=sys.stderr)
    print(f"Wrote {path}: {len(index)} items, {index.bits} bits, {index.meta['items_per_s']:,.0f} images/s"
          + (f", {len(skipped)} unreadable files skipped" if skipped else ""))
    return 0


def cmd_index_ensure(args: argparse.Namespace) -> int:
    from .index_store import index_summary
    from .indexer import ensure_index
    from .model import Embedder

    index = ensure_index(Embedder(args.model), args.index, bits=args.bits)
    print(f"{args.index}: ready ({index_summary(index)['items']} items, {index.bits} bits)")
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    from .index_store import index_summary, read_index

    info = index_summary(read_index(args.index), Path(args.index))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.index}: {info['items']} items from {info['source']}, {info['bits']} bits, "
          f"{info['embedding_dim']}-d embeddings, {info['file_mb']:.1f} MB, built {info['created']}")
    print(f"model sha256 {info['model_sha256'][:16]}...")
    for c in info["categories"]:
        print(f"  {c['name']:<12} {c['items']:>7} items in {c['buckets']:>6} buckets "
              f"(largest {c['largest_bucket']})")
    return 0


def cmd_index_verify(args: argparse.Namespace) -> int:
    from .index_store import read_index, verify_codes
    from .model import file_sha256

    index = read_index(args.index, model_sha256=file_sha256(args.model) if args.model else None)
    verify_codes(index)
    print(f"{args.index}: OK ({len(index)} items, {index.bits} bits"
          + (", matches the model" if args.model else "") + ")")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .search import Searcher

    searcher = Searcher.open(args.model, args.index)
    result = searcher.search(Path(args.image).read_bytes(), k=args.k, mode=args.mode)
    payload = searcher.payload(result)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    cat = payload["category"]
    print(f"{cat['name']} ({cat['probability']:.1%}); also " + ", ".join(
        f"{c['name']} {c['probability']:.1%}" for c in payload["top_categories"][1:]))
    for rank, r in enumerate(payload["results"], 1):
        where = f"  {r['path']}" if "path" in r else ""
        print(f"{rank:>3}. item {r['id']:>6}  {r['category']:<12} similarity {r['similarity']:.3f}{where}")
    print("timings (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in payload["timings_ms"].items()))
    return 0


def show_and_save(text: str, report: dict, json_path: str | None) -> int:
    """Print a long job's summary and, when asked, write its JSON report."""
    from .evaluate import write_report

    print(text)
    if json_path:
        write_report(report, json_path)
        print(f"wrote {json_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import load_fashion_mnist
    from .evaluate import evaluate, summary
    from .indexer import ensure_index
    from .model import Embedder
    from .search import Searcher

    embedder = Embedder(args.model)
    searcher = Searcher(embedder, ensure_index(embedder, args.index))
    report = evaluate(searcher, load_fashion_mnist(), k=args.k, limit=args.limit)
    return show_and_save(summary(report), report, args.json)


def cmd_photo_study(args: argparse.Namespace) -> int:
    from .data import load_fashion_mnist
    from .model import Embedder
    from .photo_study import run_study, summary

    if not 1 <= args.n <= 10000:
        raise ValueError(f"--n must be between 1 and 10000, got {args.n}")
    data = load_fashion_mnist()
    report = run_study(Embedder(args.model), data.x_test[:args.n], data.y_test[:args.n], seed=args.seed)
    return show_and_save(summary(report), report, args.json)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import render_report, run_bench

    if args.report_only:
        render_report(args.report_only, args.report_dir or "docs")
        return 0
    results = run_bench(quick=args.quick, json_path=args.json, report_dir=args.report_dir)
    return 1 if results.get("errors") else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Replace this process with gunicorn running wsgi:app under the shipped gunicorn.conf.py."""
    import os

    # Absolute paths: gunicorn --chdir moves to the repository root before loading the app.
    os.environ.update({"FASHION16_MODEL": str(Path(args.model).resolve()),
                       "FASHION16_INDEX": str(Path(args.index).resolve())})
    if args.bind:
        os.environ["FASHION16_BIND"] = args.bind
    if args.workers:
        os.environ["FASHION16_WORKERS"] = str(args.workers)
    argv = [sys.executable, "-m", "gunicorn", "--config", str(config.ROOT / "gunicorn.conf.py"),
            "--chdir", str(config.ROOT), "wsgi:app"]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # not reached: execv does not return


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description="Fashion-16: search clothing catalogs by photo.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help: str, parent=sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    def model_arg(sp, required=True):
        sp.add_argument("--model", default=str(config.model_path()) if required else None,
                        help="model file (default: $FASHION16_MODEL or models/fashion16.keras)")

    def index_arg(sp, flag="--index"):
        sp.add_argument(flag, default=str(config.index_path()),
                        help="index file (default: $FASHION16_INDEX or index_store/fashion_mnist.h5)")

    sp = add("data", cmd_data, "find, verify and describe Fashion-MNIST")
    sp.add_argument("--no-download", action="store_true", help="do not try the Keras download")

    sp = add("train", cmd_train, "train the Fashion-16 CNN, write the model, its card and curves")
    sp.add_argument("--out", default=str(config.DEFAULT_MODEL), help="model file to write")
    sp.add_argument("--backbone", choices=("fashion16", "vgg16"), default="fashion16",
                    help="fashion16: the paper's CNN on Fashion-MNIST; vgg16: ImageNet VGG-16 + head for photos")
    sp.add_argument("--data", help="vgg16: folder of photos in sub-folders named after categories")
    sp.add_argument("--vgg-weights", default="imagenet",
                    help="vgg16: a local vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, or imagenet "
                         "(the Keras cache, downloaded if absent)")
    sp.add_argument("--input-size", type=int, default=224, help="vgg16: input width and height")
    sp.add_argument("--epochs", type=int, help="default 20 (fashion16), 5 (vgg16)")
    sp.add_argument("--batch-size", type=int, help="default 128 (fashion16), 32 (vgg16)")
    sp.add_argument("--seed", type=int, default=16)
    sp.add_argument("--limit", type=int, help="fashion16: only the first N training and test images (a quick check)")

    index = add("index", None, "build, describe or verify a gallery index")
    isub = index.add_subparsers(dest="index_command", required=True, metavar="SUBCOMMAND")
    sp = add("build", cmd_index_build, "hash a gallery into an HDF5 index", isub)
    sp.add_argument("--gallery", default="fashion-mnist",
                    help="fashion-mnist (60k training images), fashion-mnist:all (70k) or a folder of images")
    sp.add_argument("--bits", type=int, default=256, help="code length, a multiple of 32 in 32-1024")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random hyperplanes")
    sp.add_argument("--batch-size", type=int, default=1024)
    index_arg(sp, "--out")
    model_arg(sp)
    sp = add("ensure", cmd_index_ensure, "build the default Fashion-MNIST index unless a matching one exists", isub)
    sp.add_argument("--bits", type=int, default=256, help="code length when building")
    index_arg(sp)
    model_arg(sp)
    sp = add("info", cmd_index_info, "describe an index: items, bits, buckets per category", isub)
    index_arg(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = add("verify", cmd_index_verify, "check an index deeply (structure, checksums, codes)", isub)
    index_arg(sp)
    model_arg(sp, required=False)

    sp = add("search", cmd_search, "search the gallery with an image file")
    sp.add_argument("image", help="JPEG, PNG, WebP or GIF file")
    sp.add_argument("--k", type=int, default=20, help="number of results (1-100)")
    sp.add_argument("--mode", choices=("routed", "direct", "soft"), default="routed")
    sp.add_argument("--json", action="store_true", help="print the API's JSON")
    model_arg(sp)
    index_arg(sp)

    sp = add("evaluate", cmd_evaluate, "precision@20, LSH recall and query time on the 10k test images")
    sp.add_argument("--json", metavar="PATH", help="write the report here")
    sp.add_argument("--k", type=int, default=20)
    sp.add_argument("--limit", type=int, help="use only the first N test images")
    model_arg(sp)
    index_arg(sp)

    sp = add("serve", cmd_serve, "run the web app and API under gunicorn (settings: gunicorn.conf.py)")
    sp.add_argument("--bind", help="HOST:PORT to listen on (default: $FASHION16_BIND, else 0.0.0.0:$PORT or 8000)")
    sp.add_argument("--workers", type=int, help="worker processes (default: $FASHION16_WORKERS, else one per CPU)")
    model_arg(sp)
    index_arg(sp)

    sp = add("photo-study", cmd_photo_study,
             "accuracy on photo-like versions of the test images (upscaled, coloured, on white, JPEG...)")
    sp.add_argument("--n", type=int, default=1000, help="test images to use (1-10000)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random photo variations")
    sp.add_argument("--json", metavar="PATH", help="write the report here")
    model_arg(sp)

    sp = add("bench", cmd_bench, "benchmarks: search core, HTTP, indexing, quality by bits, the paper's tables")
    sp.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes (CI smoke run)")
    sp.add_argument("--json", metavar="PATH", help="write the results here")
    sp.add_argument("--report-dir", metavar="DIR",
                    help="write benchmarks.md, benchmarks.json and the plots here (default: docs/ for full runs; "
                         "quick runs write no report unless given)")
    sp.add_argument("--report-only", metavar="JSON", help="only render the report from a saved run's JSON")
    return p


def known_errors() -> tuple[type[Exception], ...]:
    """Failures that get one line and status 2, imported only once something failed.

    app.model loads TensorFlow (seconds), which `--help` and `index info` never need; only
    app.model raises WeightsUnavailableError, so it is already loaded whenever that is raised.
    """
    from .data import DatasetError
    from .index_store import IndexStoreError
    from .preprocess import ImageRejected

    errors = [DatasetError, IndexStoreError, ImageRejected, FileNotFoundError, ValueError]
    model = sys.modules.get(f"{__package__}.model")
    return (*errors, model.WeightsUnavailableError) if model else tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, known_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
