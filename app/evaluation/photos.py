"""The photo catalog's evaluation: real test photos as queries, catalog photos retaken as a phone would.

- Queries: the 372 test photos, none of them in the catalog (train + validation, 3,409
  photos). Each is one ``Catalog.search`` of its file's bytes, as an upload would be.
- Precision@20: share of the 20 results whose known category is the query's, per mode.
- LSH recall@20: routed hash-and-scan against exact cosine in the same library.
- Item recall@1 / @20: every catalog photo, changed as a phone photo of the same garment
  would be (``phone_like``), searched for in each mode: is the original first / among the 20?
- Looks right: do the routed top 20 share the query's garment colour more than its room's
  (app/evaluation/looks_right.py)?
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ..catalog import Catalog
from ..imaging.decode import MAX_PIXELS, decode
from ..photo_dataset import load_photos
from ..progress import Progress
from ..search import MODES
from .looks_right import catalog_looks_right
from .metrics import environment, lsh_recall, run_queries, spread

PERTURBATIONS = ("crop to 60-90% of the area", "rotate up to 10 degrees", "brightness, contrast and colour x0.75-1.25",
                 "blur up to 1.5 px", "rescale to 200-800 px", "JPEG quality 50-90")


def phone_like(img: Image.Image, rng: np.random.Generator) -> bytes:
    """The same garment, photographed again: reframed, tilted, lit and focused differently, recompressed."""
    img = img.convert("RGB")
    area = rng.uniform(0.6, 0.9)
    aspect = rng.uniform(0.85, 1.15)
    w, h = img.size
    cw, ch = min(w, round(w * np.sqrt(area * aspect))), min(h, round(h * np.sqrt(area / aspect)))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((left, top, left + cw, top + ch))
    fill = tuple(int(v) for v in np.asarray(img).reshape(-1, 3).mean(0))
    img = img.rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BILINEAR, fillcolor=fill)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(float(rng.uniform(0.75, 1.25)))
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.5))))
    scale = float(rng.uniform(200, 800)) / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                     Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=int(rng.integers(50, 91)))
    return out.getvalue()


def item_recall(catalog: Catalog, k: int, limit: int | None, seed: int) -> dict:
    """Each catalog photo, retaken by ``phone_like``, as a query in every mode: is the original first / in the top k?

    The headline figures are direct mode's, the search across the whole catalog that finding one
    particular garment is: routed search cannot find an item whose retaken photo the classifier
    files under another category (soft mode recovers part of those), so every mode is reported.
    """
    rng = np.random.default_rng(seed)
    all_ids = catalog.snapshot.ids()
    queried = all_ids[spread(catalog.snapshot.items(all_ids).categories, limit, seed)]
    found: dict[str, list[tuple[bool, bool]]] = {mode: [] for mode in MODES}
    progress = Progress(len(queried), "item recall", unit="queries")
    for item_id in map(int, queried):
        query = catalog.model.decode(phone_like(decode(catalog.item_file(item_id).read_bytes()), rng), MAX_PIXELS)
        for mode in MODES:
            hits = catalog.search(query, k=k, mode=mode).ids
            found[mode].append((len(hits) > 0 and hits[0] == item_id, item_id in hits))
        progress.update()
    progress.close()
    by_mode = {mode: {"at_1": float(np.mean([f for f, _ in hits])), f"at_{k}": float(np.mean([w for _, w in hits]))}
               for mode, hits in found.items()}
    return {"item_recall_at_1": by_mode["direct"]["at_1"], f"item_recall_at_{k}": by_mode["direct"][f"at_{k}"],
            "item_recall_mode": "direct", "item_recall_by_mode": by_mode, "item_queries": len(queried)}


def evaluate(catalog: Catalog, k: int = 20, limit: int | None = None, seed: int = 0) -> dict:
    """Queries = the test split (never in the catalog); the catalog = the served photos store."""
    test = load_photos("test")
    chosen = spread(test.labels, limit, seed)
    files = [test.read(int(i)) for i in chosen]
    labels = test.labels[chosen]
    inputs = np.stack([catalog.model.prepare(catalog.model.decode(f, MAX_PIXELS)) for f in files])
    probs, embeddings = catalog.model(inputs)
    predicted = probs.argmax(1)
    report = {
        "catalog": catalog.name, "queries": len(files), "gallery_items": len(catalog), "k": k,
        "classifier_accuracy": float(np.mean(predicted == labels)),
    }
    per_mode = {}
    for mode in MODES:
        stats = run_queries(catalog, files, labels, mode, k)
        report[f"precision_at_{k}_{mode}"] = stats.pop("precision")
        report[f"mean_query_ms_{mode}"] = stats.pop("mean_ms")
        per_mode[mode] = stats
    report[f"lsh_recall_at_{k}"] = lsh_recall(catalog, probs, embeddings, k)
    report.update(item_recall(catalog, k, limit, seed))
    report["looks_right"] = catalog_looks_right(catalog, files, labels, k, seed)
    report["per_category"] = [
        {"category": name, "queries": int((labels == c).sum()),
         "accuracy": float(np.mean(predicted[labels == c] == c)) if (labels == c).any() else None,
         "catalog_items": int(n)}
        for c, (name, n) in enumerate(zip(catalog.class_names, catalog.counts()))]
    report["latency"] = per_mode
    report["perturbations"] = list(PERTURBATIONS)
    report["setup"] = {"model": catalog.model.path.name, "runtime": catalog.model.runtime,
                       "bits": catalog.snapshot.hasher.bits, "engine": catalog.snapshot.scan_engine,
                       "catalog_version": catalog.version,
                       "candidates": catalog.engine.candidates, "soft_routing": vars(catalog.engine.soft),
                       "seed": seed}
    report["environment"] = environment()
    return report


def summary(report: dict) -> str:
    k = report["k"]
    lines = [f"{report['queries']} test photos against {report['gallery_items']} catalog photos",
             f"classifier accuracy      {report['classifier_accuracy']:.4f}"]
    for mode in MODES:
        lines.append(f"precision@{k} {mode:<7}     {report[f'precision_at_{k}_{mode}']:.4f}   "
                     f"mean {report[f'mean_query_ms_{mode}']:.2f} ms/query")
    lines.append(f"LSH recall@{k}            {report[f'lsh_recall_at_{k}']:.4f}")
    for mode, r in report["item_recall_by_mode"].items():
        lines.append(f"item recall@1 / @{k} {mode:<7} {r['at_1']:.4f} / {r[f'at_{k}']:.4f}"
                     f"   ({report['item_queries']} catalog photos retaken)")
    looks = report["looks_right"]
    lines.append(f"looks right (routed top-{k} vs random, colour distance ratio): garment "
                 f"{looks['garment_colour_ratio']:.3f}, background {looks['background_ratio']:.3f}")
    lines.append("per category: " + ", ".join(
        f"{row['category']} {row['accuracy']:.2f}" for row in report["per_category"] if row["accuracy"] is not None))
    return "\n".join(lines)
