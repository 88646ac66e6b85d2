"""The command line: data, train, convert, index build/ensure/info/verify, search, evaluate, photo-study,
bench, serve.

Each ``cmd_*`` is a thin adapter: it reads its arguments, calls the stage that does the
work, and prints. Every command has ``--help``. Known failures (missing data, model or
store, a bad image or setting) print one clear line and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .search import MODES
from .settings import ROOT, Settings

CATALOG_HELP = "catalog name: photos, fashion-mnist, or one built from your own folder"


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 epochs or 0 queries is a mistake, not a request)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def settings() -> Settings:
    return Settings.from_env()


def resolve_model(spec: str, s: Settings) -> Path:
    """A model by name (models/NAME.tflite) or by path (.tflite or .keras)."""
    from .catalog import model_path

    path = Path(spec)
    return path if path.suffix in (".tflite", ".keras") else model_path(s, spec)


def catalog_store(args: argparse.Namespace, s: Settings):
    """The store ``--store`` names, else the catalog's own (FASHION16_STORES, else STORE_DIR/NAME)."""
    from .catalog import catalog_store as default_store
    from .stores import check_name, open_store

    check_name(args.catalog)
    return open_store(args.store, args.catalog) if getattr(args, "store", None) else default_store(s, args.catalog)


def store_model(store, s: Settings, threads: int = 1):
    """The model a catalog's store was built with (from the models folder), checked against it."""
    from .catalog import check_model
    from .runtime import open_model

    snapshot = store.snapshot()
    model = open_model(s.models_dir / snapshot.manifest.model_file, threads=threads)
    check_model(snapshot, model, store)
    return model


def print_report(report, verb: str, uri: str) -> None:
    """The end-of-command summary of build, add and remove: notes first (stderr), then one line."""
    for line in report.lines():
        print(line, file=sys.stderr)
    parts = [f"{len(report.added)} added", f"{len(report.removed)} removed"]
    if report.kept:
        parts.append(f"{report.kept} unchanged (ids kept)")
    if report.skipped:
        parts.append(f"{len(report.skipped)} unreadable files skipped")
    rate = f"; {report.items_per_s:,.0f} images/s" if report.items_per_s else ""
    print(f"{verb} catalog {report.catalog} ({uri}): version {report.version}, {report.items} items: "
          + ", ".join(parts) + rate)


def cmd_data(args: argparse.Namespace) -> int:
    import numpy as np

    from .fashion_mnist import CLASS_NAMES, candidate_dirs, load_fashion_mnist
    from .photo_dataset import CLASS_NAMES as PHOTO_CLASSES
    from .photo_dataset import PHOTOS_ROOT
    from .photo_dataset import SPLITS, load_photos

    print("Looking in: " + ", ".join(str(d) for d in candidate_dirs()) + ", then the Keras cache/download")
    data = load_fashion_mnist(download=not args.no_download)
    print(f"Fashion-MNIST from {data.source}: {len(data.x_train)} training + {len(data.x_test)} test images, "
          f"{data.x_train.shape[1]}x{data.x_train.shape[2]} greyscale")
    train_counts, test_counts = np.bincount(data.y_train, minlength=10), np.bincount(data.y_test, minlength=10)
    for c, name in enumerate(CLASS_NAMES):
        print(f"  {c} {name:<12} train {train_counts[c]:>5}  test {test_counts[c]:>5}")
    splits = {split: load_photos(split) for split in SPLITS}
    print(f"Clothing photos in {PHOTOS_ROOT}: " + ", ".join(f"{len(p)} {s}" for s, p in splits.items()))
    for c, name in enumerate(PHOTO_CLASSES):
        counts = "  ".join(f"{s} {int((p.labels == c).sum()):>4}" for s, p in splits.items())
        print(f"  {c} {name:<12} {counts}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.backbone == "vgg16":
        from .training.vgg16 import train_vgg16

        if not args.data:
            raise ValueError("--backbone vgg16 needs --data DIR: photos sorted into sub-folders named after categories")
        train_vgg16(Path(args.out or ROOT / "models" / "vgg16.keras"), Path(args.data), weights=args.vgg_weights,
                    input_size=args.input_size, epochs=args.epochs or 5, batch_size=args.batch_size or 32,
                    seed=args.seed)
        return 0
    if args.data or args.catalog == "photos":
        from dataclasses import replace

        from .stores import check_name
        from .training.photos import PhotoRecipe, train_photos

        if args.catalog == "fashion-mnist":
            raise ValueError("--data trains the photo recipe for a catalog of your own: name it with --catalog NAME")
        recipe = PhotoRecipe()
        recipe = replace(recipe, epochs=args.epochs or recipe.epochs, batch_size=args.batch_size or recipe.batch_size,
                         seed=args.seed if args.seed is not None else recipe.seed)
        name = check_name(args.catalog)
        out = Path(args.out or ROOT / "models" / f"{name}.keras")
        train_photos(out, recipe, weights_file=args.weights, limit=args.limit,
                     data=Path(args.data) if args.data else None)
        if args.data:
            print(f"Next: python -m app index build --catalog {name} --gallery DIR --model {out.stem}, then serve "
                  f"it with FASHION16_CATALOGS={name}")
        return 0
    if args.catalog != "fashion-mnist":
        raise ValueError(f"train --catalog {args.catalog} needs --data FOLDER: your photos in one sub-folder per "
                         f"category (the built-in catalogs are photos and fashion-mnist)")
    from .training.fashion16 import train

    train(Path(args.out or ROOT / "models" / "fashion16.keras"), epochs=args.epochs or 20,
          batch_size=args.batch_size or 128, seed=16 if args.seed is None else args.seed, limit=args.limit)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .training.convert import convert

    out = convert(args.model, args.out)
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB), float32")
    card = Path(args.model).with_suffix(".json")
    served = json.loads(card.read_text()).get("files", {}).get("serving", {}) if card.is_file() else {}
    if "quantization" in served:  # int8 needs the training photos to calibrate it: only training publishes it
        print(f"note: {card.name} describes a {served['quantization'].split(' (')[0]} file; this float32 one is "
              "the same network unrounded, about 1.7x slower, and catalogs built with the int8 file must be rebuilt "
              "to use it. `python -m app train` publishes int8 (it calibrates on the training photos).")
    return 0


def cmd_index_build(args: argparse.Namespace) -> int:
    from .catalog import BUILTIN
    from .indexer import build
    from .runtime import open_model
    from .sources import open_source

    s = settings()
    store = catalog_store(args, s)
    spec = BUILTIN.get(args.catalog)
    gallery = args.gallery or (spec.source if spec else None)
    if gallery is None:
        raise ValueError(f"catalog {args.catalog!r} is not built in: give its photos with --gallery DIR")
    model_name = args.model or (spec.model if spec else "photos")
    if spec is not None and args.model and resolve_model(args.model, s).stem != spec.model:
        raise ValueError(f"the built-in catalog {args.catalog} is made with model {spec.model}; "
                         f"give another catalog name for a catalog of model {args.model}")
    source = open_source(gallery)
    if args.limit:
        source.limit(args.limit)
    model = open_model(resolve_model(model_name, s), threads=args.threads)
    report = build(store, model, source, args.catalog, bits=args.bits, seed=args.seed, strict=args.strict)
    print_report(report, "Built", store.uri)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    from .indexer import add

    s = settings()
    store = catalog_store(args, s)
    report = add(store, store_model(store, s, threads=args.threads), args.paths)
    print_report(report, "Changed", store.uri)
    return 0


def cmd_index_remove(args: argparse.Namespace) -> int:
    from .indexer import remove

    store = catalog_store(args, settings())
    report = remove(store, args.items)
    print_report(report, "Changed", store.uri)
    return 0


def cmd_index_compact(args: argparse.Namespace) -> int:
    store = catalog_store(args, settings())
    if not hasattr(store, "compact"):
        raise ValueError(f"{store.uri} compacts itself; nothing to do")
    version = store.compact()
    print(f"Compacted {store.uri}: version {version}, {len(store.snapshot())} items in one segment")
    return 0


def catalog_of_store(uri: str) -> str:
    """The catalog a folder store holds is its folder's name; a Milvus store holds many (ValueError: --catalog)."""
    from .stores import open_store

    return open_store(uri).catalog


def cmd_index_migrate(args: argparse.Namespace) -> int:
    from .stores import check_name, open_store
    from .stores.migrate import migrate

    catalog = check_name(args.catalog) if args.catalog else catalog_of_store(args.source)
    source, dest = open_store(args.source, catalog), open_store(args.to, catalog)
    copy = migrate(source, dest)
    print(f"Migrated catalog {catalog} from {source.uri} to {dest.uri}: version {copy.version}, {len(copy)} items, "
          f"next id {copy.next_id}; ids, hyperplanes and every item compared")
    return 0


def cmd_index_ensure(args: argparse.Namespace) -> int:
    from .catalog import BUILTIN
    from .indexer import ensure_builtin

    s = settings()
    for name in args.catalog or list(BUILTIN):
        uri, built = ensure_builtin(name, s, bits=args.bits)
        print(f"{name}: {uri} {'built' if built else 'ready'}")
    return 0


def store_info(store) -> dict:
    """What ``index info`` reports of a store's latest version."""
    snapshot = store.snapshot()
    m = snapshot.manifest
    return {"catalog": m.catalog, "store": store.uri, "version": snapshot.version, "items": len(snapshot),
            "next_id": snapshot.next_id, "digest": snapshot.digest, "bits": snapshot.hasher.bits,
            "embedding_dim": m.embedding_dim, "source": m.source, "root": m.root,
            "model": {"file": m.model_file, "sha256": m.model_sha256}, "created": m.created,
            "categories": [{"name": n, "items": int(c)} for n, c in zip(m.class_names, snapshot.counts())],
            "segments": len(getattr(snapshot, "parts", [])) or None}


def cmd_index_info(args: argparse.Namespace) -> int:
    info = store_info(catalog_store(args, settings()))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['store']}: catalog {info['catalog']} version {info['version']}, {info['items']} items from "
          f"{info['source']}, {info['bits']} bits, {info['embedding_dim']}-d embeddings, built {info['created']}")
    print(f"model {info['model']['file']} (sha256 {info['model']['sha256'][:16]}...), next id {info['next_id']}, "
          f"digest {info['digest'][:16]}...")
    for c in info["categories"]:
        print(f"  {c['name']:<14} {c['items']:>7} items")
    return 0


def cmd_index_verify(args: argparse.Namespace) -> int:
    from .catalog import check_model
    from .runtime import open_model

    s = settings()
    store = catalog_store(args, s)
    snapshot = store.verify() if hasattr(store, "verify") else store.snapshot()
    model = s.models_dir / snapshot.manifest.model_file
    if not model.is_file():
        raise FileNotFoundError(f"{store.uri} names model {model}, which is missing")
    check_model(snapshot, open_model(model), store)
    print(f"{store.uri}: OK (catalog {snapshot.manifest.catalog} version {snapshot.version}, {len(snapshot)} items, "
          f"{snapshot.hasher.bits} bits, digest and every code checked, matches {model.name})")
    return 0


def read_image(path: str) -> bytes:
    """An image file's bytes; a folder, a missing or unreadable file is one ``error:`` line."""
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"{path} is a folder; give one image file (JPEG, PNG, WebP or GIF)")
    if not file.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror})") from None


def cmd_search(args: argparse.Namespace) -> int:
    from .catalog import open_catalog
    from .imaging.crop import Box
    from .schema import image_path, result_json

    s = settings()
    data = read_image(args.image)
    box = Box.parse(args.box) if args.box else None
    catalog = open_catalog(s, args.catalog, store=catalog_store(args, s))
    if args.category is not None and args.category not in catalog.stocked():
        raise ValueError(f"--category must be one the {catalog.name} catalog has items in "
                         f"({', '.join(catalog.stocked())}), got {args.category!r}")
    result = catalog.search(data, k=args.k, mode=args.mode, max_pixels=s.max_pixels,
                            categories=[args.category] if args.category else None, box=box)
    payload = result_json(catalog, result, image_url=image_path(catalog))
    payload["box"] = str(box) if box and not box.whole else None
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    cat = payload["category"]
    print(f"{catalog.title}: {cat['name']} ({cat['probability']:.1%}); also " + ", ".join(
        f"{c['name']} {c['probability']:.1%}" for c in payload["top_categories"][1:]))
    for rank, r in enumerate(payload["results"], 1):
        where = f"  {r['path']}" if "path" in r else ""
        print(f"{rank:>3}. item {r['id']:>6}  {r['category']:<12} similarity {r['similarity']:.3f}{where}")
    print("timings (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in payload["timings_ms"].items()))
    return 0


def show_and_save(text: str, report: dict, json_path: str | None) -> int:
    """Print a long job's summary and, when asked, write its JSON report."""
    from .reports import write_json

    print(text)
    if json_path:
        write_json(report, json_path)
        print(f"wrote {json_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .catalog import open_catalog
    from .indexer import ensure_builtin

    s = settings()
    if args.catalog not in ("photos", "fashion-mnist"):
        raise ValueError(f"evaluate knows the photos and fashion-mnist catalogs, not {args.catalog!r}")
    if args.store:  # this store for this catalog, built first if it is missing (as FASHION16_STORES would)
        s = s.with_(stores=((args.catalog, args.store), *((n, u) for n, u in s.stores if n != args.catalog)))
    ensure_builtin(args.catalog, s)
    catalog = open_catalog(s, args.catalog)
    if args.catalog == "fashion-mnist":
        from .evaluation.fashion_mnist import evaluate, summary
        from .fashion_mnist import load_fashion_mnist

        report = evaluate(catalog, load_fashion_mnist(), k=args.k, limit=args.limit)
    else:
        from .evaluation.photos import evaluate, summary

        report = evaluate(catalog, k=args.k, limit=args.limit, seed=args.seed)
    return show_and_save(summary(report), report, args.json)


def cmd_photo_study(args: argparse.Namespace) -> int:
    from .evaluation.photo_study import run_study, summary
    from .fashion_mnist import load_fashion_mnist
    from .runtime import open_model

    if not 1 <= args.n <= 10000:
        raise ValueError(f"--n must be between 1 and 10000, got {args.n}")
    data = load_fashion_mnist()
    model = open_model(resolve_model(args.model, settings()))
    report = run_study(model, data.x_test[:args.n], data.y_test[:args.n], seed=args.seed)
    return show_and_save(summary(report), report, args.json)


BENCH_NEEDS = ("matplotlib", "tensorflow")  # bench/requirements.txt: plots, and Keras beside LiteRT


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmarks live beside the package (bench/, with their own requirements), not inside it."""
    import importlib.util

    try:
        from bench.__main__ import main as bench_main
    except ImportError as exc:
        raise FileNotFoundError(f"the benchmarks are not part of this installation ({exc}); run them from a "
                                f"checkout of the repository: `python -m bench --help`") from None
    asks_help = any(a in ("-h", "--help") for a in args.bench_args)
    missing = [name for name in BENCH_NEEDS if not asks_help and not module_available(name, importlib.util)]
    if missing:
        raise FileNotFoundError(f"the benchmarks need {' and '.join(missing)}, which are not installed; install "
                                f"them with `{sys.executable} -m pip install -r bench/requirements.txt`")
    return bench_main(args.bench_args, prog="python -m app bench")


def module_available(name: str, util) -> bool:
    """Whether ``import name`` can work, without importing it (TensorFlow takes seconds)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def parse(argv: list[str] | None) -> argparse.Namespace:
    """``bench`` hands all its arguments, options and --help included, to the benchmarks' own parser."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return argparse.Namespace(func=cmd_bench, bench_args=argv[1:])
    return parser().parse_args(argv)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serving import serve

    from .settings import one_process_catalogs

    s = settings()
    if args.bind:
        s = s.with_(bind=args.bind)
    if args.workers:
        held = one_process_catalogs(s.stores)
        if args.workers > 1 and held:
            raise ValueError(f"--workers {args.workers}: catalog {held[0]}'s Milvus Lite file is held by one "
                             f"process; serve it with one worker, or from a Milvus server (milvus://HOST:PORT)")
        s = s.with_(workers=args.workers)
    if args.no_proxy:
        s = s.with_(proxy=False)
    return serve(s)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description="Fashion-16: search clothing catalogs by photo.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help: str, parent=sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    def catalog_args(sp, store: bool = True):
        sp.add_argument("--catalog", default="photos", help=f"{CATALOG_HELP} (default: photos)")
        if store:
            sp.add_argument("--store", metavar="URI",
                            help="the catalog's store: a folder or hdf5:FOLDER, milvus-lite:FILE.db, "
                                 "milvus://HOST:PORT[/COLLECTION] (default: index_store/NAME)")

    sp = add("data", cmd_data, "find, verify and describe Fashion-MNIST and the clothing photos")
    sp.add_argument("--no-download", action="store_true", help="do not try the Keras download")

    sp = add("train", cmd_train, "train a catalog's model; writes the model, its LiteRT conversion, card and curves")
    sp.add_argument("--catalog", default="photos",
                    help="photos: fine-tune ImageNet MobileNetV2 on the clothing photos (about 35 min on 2 cores); "
                         "fashion-mnist: the paper's CNN (about 18 min); any other name: the photo recipe on "
                         "your own --data FOLDER, written to models/NAME.keras")
    sp.add_argument("--out", help="model file to write (default: models/NAME.keras; fashion16.keras for fashion-mnist)")
    sp.add_argument("--epochs", type=positive_int, help="default 15 (photos), 20 (fashion-mnist), 5 (vgg16)")
    sp.add_argument("--batch-size", type=positive_int, help="default 32 (photos), 128 (fashion-mnist), 32 (vgg16)")
    sp.add_argument("--seed", type=int, help="default 16")
    sp.add_argument("--limit", type=positive_int, help="train on N images only: a quick check of the whole run, "
                                              "not a model to serve")
    sp.add_argument("--weights", help="photos: torchvision's mobilenet_v2-b0353104.pth (default: the cache, "
                                      "else downloaded)")
    sp.add_argument("--backbone", choices=("vgg16",), help="vgg16: the paper's VGG-16 + head on your own photos")
    sp.add_argument("--data", help="a folder of your photos, one sub-folder per category (its name is the "
                                   "category's): the photo recipe for --catalog NAME, or vgg16's training photos")
    sp.add_argument("--vgg-weights", default="imagenet",
                    help="vgg16: a local vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, or imagenet "
                         "(the Keras cache, downloaded if absent)")
    sp.add_argument("--input-size", type=int, default=224, help="vgg16: input width and height")

    sp = add("convert", cmd_convert, "convert a .keras model to the .tflite file serving runs")
    sp.add_argument("model", help="models/NAME.keras")
    sp.add_argument("--out", help="default: beside it, NAME.tflite")

    index = add("index", None, "build, change, check or describe a catalog's store (index_store/NAME/)")
    isub = index.add_subparsers(dest="index_command", required=True, metavar="SUBCOMMAND")
    sp = add("build", cmd_index_build, "run a catalog's photos through its model: a new version of its store "
                                       "(unchanged photos keep their ids)", isub)
    catalog_args(sp)
    sp.add_argument("--gallery", help="what to index: photos, fashion-mnist, fashion-mnist:all or a folder "
                                      "(default: the built-in catalog's own)")
    sp.add_argument("--model", help="model name in models/ or a file (default: the catalog's, photos for folders)")
    sp.add_argument("--bits", type=int, default=256, help="code length, a multiple of 32 in 32-1024")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random hyperplanes")
    sp.add_argument("--threads", type=positive_int, default=2, help="inference threads while indexing")
    sp.add_argument("--limit", type=positive_int, help="index only N pictures spread over the source (a quick check)")
    sp.add_argument("--strict", action="store_true",
                    help="refuse photos in folders that are not categories of the model (default: file them by "
                         "the model's guess, and say so)")
    sp = add("add", cmd_index_add, "add photos (files or folders inside the catalog's folder): only new or changed "
                                   "ones are run through the model; one new version", isub)
    catalog_args(sp)
    sp.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    sp.add_argument("--threads", type=positive_int, default=2, help="inference threads while indexing")
    sp = add("remove", cmd_index_remove, "remove items by id or by photo path (a folder: everything under it); "
                                         "one new version", isub)
    catalog_args(sp)
    sp.add_argument("items", nargs="+", metavar="ID_OR_PATH")
    sp = add("compact", cmd_index_compact, "fold a store's added and removed items into one segment (a new version; "
                                           "ids unchanged)", isub)
    catalog_args(sp)
    sp = add("migrate", cmd_index_migrate, "copy a catalog into an empty store of any kind (HDF5 <-> Milvus), "
                                           "keeping its ids, version and hyperplanes; the copy is then compared "
                                           "item by item", isub)
    sp.add_argument("--from", dest="source", required=True, metavar="URI",
                    help="the store to copy: a folder or hdf5:FOLDER, milvus-lite:FILE.db, milvus://HOST:PORT[/PREFIX]")
    sp.add_argument("--to", required=True, metavar="URI", help="the empty store to copy into (same forms)")
    sp.add_argument("--catalog", help="the catalog to copy (default: a folder store's own)")
    sp = add("ensure", cmd_index_ensure, "build the built-in catalogs' stores unless matching ones exist", isub)
    sp.add_argument("--catalog", action="append", choices=("photos", "fashion-mnist"),
                    help="only this catalog (repeatable; default: both)")
    sp.add_argument("--bits", type=int, default=256, help="code length when building")
    sp = add("info", cmd_index_info, "describe a catalog store: items per category, model, bits", isub)
    catalog_args(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = add("verify", cmd_index_verify, "check a catalog store deeply (checksums, structure, codes, model)", isub)
    catalog_args(sp)

    sp = add("search", cmd_search, "search a catalog with an image file")
    sp.add_argument("image", help="JPEG, PNG, WebP or GIF file")
    catalog_args(sp)
    sp.add_argument("--k", type=positive_int, default=20, help="number of results (1-100)")
    sp.add_argument("--mode", choices=MODES, help="which categories are searched (default: the catalog's, chosen on "
                                                 "validation data: soft for photo catalogs)")
    sp.add_argument("--category", help="search only this category (one the catalog has items in)")
    sp.add_argument("--box", metavar="X,Y,W,H", help="search only this part of the picture: fractions (0-1) of its "
                                                     "width and height, e.g. 0.1,0.2,0.5,0.6")
    sp.add_argument("--json", action="store_true", help="print the API's JSON (image_url: the item's path on a "
                                                        "server serving this catalog)")

    sp = add("evaluate", cmd_evaluate, "precision@20, LSH and item recall, accuracy and query time on held-out "
                                       "queries")
    sp.add_argument("--catalog", choices=("photos", "fashion-mnist"), default="photos",
                    help="photos: the 372 test photos against train + validation; fashion-mnist: the paper's "
                         "10k test images against the 60k gallery")
    sp.add_argument("--store", metavar="URI", help="evaluate the catalog in this store (built there first when "
                                                   "missing): a folder, milvus-lite:FILE.db, milvus://HOST:PORT")
    sp.add_argument("--json", metavar="PATH", help="write the report here")
    sp.add_argument("--k", type=positive_int, default=20)
    sp.add_argument("--limit", type=positive_int, help="use only the first N queries")
    sp.add_argument("--seed", type=int, default=0, help="photos: seed of the phone-like perturbations")

    sp = add("photo-study", cmd_photo_study,
             "Fashion-MNIST model: accuracy on photo-like versions of the test images (upscaled, coloured, JPEG...)")
    sp.add_argument("--n", type=int, default=1000, help="test images to use (1-10000)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random photo variations")
    sp.add_argument("--json", metavar="PATH", help="write the report here")
    sp.add_argument("--model", default="fashion16", help="model name or file (default: fashion16)")

    add("bench", cmd_bench, "the benchmarks: python -m bench, from a checkout (`python -m app bench --help`)")

    sp = add("serve", cmd_serve, "serve the web app and API: nginx in front of gunicorn (settings: FASHION16_*)")
    sp.add_argument("--bind", help="HOST:PORT to listen on (default: $FASHION16_BIND, else 0.0.0.0:$PORT or 8000)")
    sp.add_argument("--workers", type=positive_int,
                    help="gunicorn workers (default: $FASHION16_WORKERS, else one per CPU)")
    sp.add_argument("--no-proxy", action="store_true", help="gunicorn alone, without nginx in front")
    return p


def known_errors() -> tuple[type[Exception], ...]:
    """Failures that get one line and status 2, imported only once something failed."""
    from .fashion_mnist import DatasetError
    from .files import CannotWrite
    from .imaging.decode import ImageRejected
    from .nets.torch_weights import WeightsUnavailableError
    from .stores import StoreError

    return (DatasetError, StoreError, ImageRejected, WeightsUnavailableError, FileNotFoundError, ValueError,
            CannotWrite)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, known_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
