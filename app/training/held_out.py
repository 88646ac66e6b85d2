"""Choosing the photo model on held-out photos only: validation queries against a catalog of training photos.

Every choice of the recipe (embedding parts and weights, their dimension, int8 or float) is
made here, never on the test split. One set of prepared inputs serves every candidate:

- ``gallery``: the 3,068 training photos, the catalog (each filed under its known category);
- ``queries``: the 341 validation photos: accuracy, precision@20 per mode, looks-right ratios;
- ``retakes``: 600 training photos retaken as a phone would (app/evaluation/photos.py
  ``phone_like``): item recall@1/@20, direct and routed. A retake keeps its room, which
  rewards matching the room; so the same 600 garments are also ``moved``: cut out with their
  mask, put in another training photo's room (80% size, centred), then retaken: item recall
  when a shopper photographs the very garment somewhere else;
- ``variants``: the validation photos made unlike the data set, for the classifier: the garment
  on another validation photo (a real room, often with another garment in it), turned 90
  degrees, seen from further away (60% of the frame), under dim warm light.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ..evaluation.looks_right import colours, looks_right
from ..evaluation.metrics import label_precision
from ..evaluation.photos import phone_like
from ..imaging.decode import decode
from ..imaging.photo import photo_input
from ..photo_dataset import CLASS_NAMES, PhotoSet, load_photos
from ..search import SearchEngine, SoftRouting
from ..stores.memory import labelled_store

RETAKES = 600
VARIANTS = ("background", "turned", "small", "light")


@dataclass
class HeldOut:
    """Prepared inputs (uint8) and what the measures need besides model outputs."""

    gallery: np.ndarray
    gallery_labels: np.ndarray
    gallery_colours: np.ndarray   # (n, 2, 3) looks-right colours of each catalog photo
    queries: np.ndarray
    query_labels: np.ndarray
    query_colours: np.ndarray
    retakes: np.ndarray
    retake_rows: np.ndarray       # the gallery row each retake is of
    variants: dict[str, np.ndarray]
    moved: np.ndarray | None = None  # the same garments retaken in another room


def variant(img: Image.Image, mask: np.ndarray, other: Image.Image, kind: str) -> Image.Image:
    """One validation photo made unlike the data set (see the module docstring)."""
    img = img.convert("RGB")
    if kind == "turned":
        return img.transpose(Image.Transpose.ROTATE_90)
    if kind == "light":
        arr = np.asarray(img, np.float32) / 255.0
        arr = 0.75 * arr ** 1.2 * np.array([1.0, 0.88, 0.68], np.float32)
        return Image.fromarray(np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8))
    if kind == "small":
        w, h = img.size
        wide = img.resize((round(w / 0.6), round(h / 0.6)), Image.Resampling.BILINEAR).filter(
            ImageFilter.GaussianBlur(8))
        wide.paste(img, ((wide.width - w) // 2, (wide.height - h) // 2))
        return wide.resize((w, h), Image.Resampling.BILINEAR)
    if kind == "background":  # the garment, at 80%, centred on another photo's whole scene
        w, h = img.size
        room = other.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
        m = Image.fromarray(mask).resize((w, h), Image.Resampling.BILINEAR)
        sw, sh = round(w * 0.8), round(h * 0.8)
        garment, m = img.resize((sw, sh), Image.Resampling.BILINEAR), m.resize((sw, sh), Image.Resampling.BILINEAR)
        room.paste(garment, ((w - sw) // 2, (h - sh) // 2), m)
        return room
    raise ValueError(kind)


def prepare(size: int = 192, seed: int = 0, cache: Path | None = None) -> HeldOut:
    """The held-out inputs at the serving size (cached to ``cache`` when given)."""
    from .masks import MASKS_FILE, load_masks

    train, validation = load_photos("train"), load_photos("validation")

    def inputs(images) -> np.ndarray:
        return np.stack([photo_input(i, size) for i in images]).astype(np.uint8)

    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            held = HeldOut(**{k: f[k] for k in HeldOut.__dataclass_fields__ if k not in ("variants", "moved")},
                           variants={k: f[f"variant_{k}"] for k in VARIANTS},
                           moved=f["moved"] if "moved" in f.files else None)
        if held.moved is None:
            held.moved = inputs(moved_retakes(train, held.retake_rows, load_masks(MASKS_FILE).for_photos(train),
                                              seed))
            save(held, cache)
        return held
    val_masks = load_masks(MASKS_FILE).for_photos(validation)
    rng = np.random.default_rng(seed)

    start = time.time()
    gallery_imgs = [decode(train.read(i)) for i in range(len(train))]
    gallery = inputs(gallery_imgs)
    val_imgs = [decode(validation.read(i)) for i in range(len(validation))]
    rows = np.linspace(0, len(train) - 1, RETAKES).astype(int)
    retakes = inputs(decode(phone_like(gallery_imgs[r], rng)) for r in rows)
    others = rng.permutation(len(validation))
    variants = {kind: inputs(variant(val_imgs[i], val_masks[i], val_imgs[others[i]], kind)
                             for i in range(len(validation))) for kind in VARIANTS}
    held = HeldOut(gallery, train.labels.astype(np.int16), np.stack([colours(i) for i in gallery_imgs]),
                   inputs(val_imgs), validation.labels.astype(np.int16), np.stack([colours(i) for i in val_imgs]),
                   retakes, rows, variants,
                   inputs(moved_retakes(train, rows, load_masks(MASKS_FILE).for_photos(train), seed)))
    print(f"held-out inputs prepared in {time.time() - start:.0f} s", flush=True)
    if cache is not None:
        save(held, cache)
    return held


def save(held: HeldOut, cache: Path) -> None:
    np.savez(cache, **{k: getattr(held, k) for k in HeldOut.__dataclass_fields__ if k != "variants"},
             **{f"variant_{k}": v for k, v in held.variants.items()})


def moved_retakes(train: PhotoSet, rows: np.ndarray, masks: np.ndarray, seed: int = 0) -> list[Image.Image]:
    """Training photos' garments cut out, put in another training photo's room, then retaken (``phone_like``)."""
    rng = np.random.default_rng(seed + 1)
    rooms = rng.integers(0, len(train), len(rows))
    return [decode(phone_like(variant(decode(train.read(r)), masks[r], decode(train.read(int(o))), "background"), rng))
            for r, o in zip(rows, rooms)]


def measure(held: HeldOut, gallery: tuple[np.ndarray, np.ndarray], queries: tuple[np.ndarray, np.ndarray],
            retakes: tuple[np.ndarray, np.ndarray], variant_probs: dict[str, np.ndarray] | None = None,
            k: int = 20, soft: SoftRouting = SoftRouting(0.99, evidence_weight=5.0), seed: int = 0,
            moved: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Every held-out figure from model outputs: (probs, embeddings) of the gallery, queries and retakes."""
    store = labelled_store("held-out", CLASS_NAMES, gallery[1], held.gallery_labels)  # ids are gallery rows
    engine = SearchEngine(soft=soft)
    q_probs, q_emb = queries
    report = {"accuracy": round(float(np.mean(q_probs.argmax(1) == held.query_labels)), 4)}
    routed = []
    for mode in ("routed", "soft", "direct"):
        found = [engine.search(store, p, e, k, mode) for p, e in zip(q_probs, q_emb)]
        report[f"precision_{mode}"] = round(float(np.mean(
            [label_precision(r.hits, y) for r, y in zip(found, held.query_labels)])), 4)
        if mode == "routed":
            routed = found
    for mode in ("direct", "routed"):
        hits = [engine.search(store, p, e, k, mode).ids for p, e in zip(*retakes)]
        report[f"item_recall_{mode}"] = [round(float(np.mean([len(h) and h[0] == r for h, r in
                                                               zip(hits, held.retake_rows)])), 4),
                                         round(float(np.mean([r in h for h, r in zip(hits, held.retake_rows)])), 4)]
    if moved is not None:
        hits = [engine.search(store, p, e, k, "direct").ids for p, e in zip(*moved)]
        report["item_recall_moved"] = [round(float(np.mean([len(h) and h[0] == r for h, r in
                                                            zip(hits, held.retake_rows)])), 4),
                                       round(float(np.mean([r in h for h, r in zip(hits, held.retake_rows)])), 4)]
    ids_by_category = {c: store.ids(c) for c in range(len(CLASS_NAMES))}
    looks = looks_right(held.query_colours, [r.ids for r in routed], [r.searched[0] for r in routed],
                        held.query_labels, ids_by_category, lambda i: held.gallery_colours[i], CLASS_NAMES, k, seed)
    report["garment_colour_ratio"] = looks["garment_colour_ratio"]
    report["background_ratio"] = looks["background_ratio"]
    if variant_probs:
        for kind, probs in variant_probs.items():
            report[f"accuracy_{kind}"] = round(float(np.mean(probs.argmax(1) == held.query_labels)), 4)
        report["accuracy_unlike"] = round(float(np.mean([report[f"accuracy_{v}"] for v in variant_probs])), 4)
    return report


def model_outputs(run, held: HeldOut, variants: bool = True) -> dict:
    """Outputs of ``run`` (uint8 batch -> whatever the model gives) over every held-out set."""
    sets = {"gallery": held.gallery, "queries": held.queries, "retakes": held.retakes, "moved": held.moved}
    if variants:
        sets.update({f"variant_{k}": v for k, v in held.variants.items()})
    return {name: run(x) for name, x in sets.items()}


def tflite_runner(path: Path, threads: int = 2):
    from ..runtime import LiteRTModel

    model = LiteRTModel(path, threads)
    return lambda x: model(x.astype(np.float32), batch_size=64)


def measure_tflite(path: Path, held: HeldOut) -> dict:
    out = model_outputs(tflite_runner(path), held)
    return measure(held, out["gallery"], out["queries"], out["retakes"],
                   {k: out[f"variant_{k}"][0] for k in VARIANTS}, moved=out["moved"])


if __name__ == "__main__":  # python -m app.training.held_out MODEL.tflite [CACHE.npz]
    cache_file = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps(measure_tflite(Path(sys.argv[1]), prepare(cache=cache_file)), indent=1))
