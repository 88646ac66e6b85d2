"""The embedding's parts, weights and size, chosen on held-out photos (app/training/held_out.py).

python -m app.training.photo_choices TRAINED.keras OUT.json: every candidate embedding built from
one forward pass of the trained network (probe outputs: the fine-tuned features pooled on the
garment or on the whole photo, the distilled garment features, the colour histogram, a frozen
ImageNet copy pooled on the garment), measured on validation queries and retaken training
photos against a catalog of training photos; then the PCA size of the chosen one.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .held_out import VARIANTS, measure, model_outputs, prepare
from .photos import PhotoRecipe, Projection, batched, build_serving_model

CANDIDATES = (
    (("tuned_gap", 1.0),),
    (("tuned", 1.0),),
    (("garment", 1.0),),
    (("imagenet", 1.0),),
    (("tuned", 1.0), ("garment", 1.0)),
    (("tuned", 1.0), ("imagenet", 1.0)),
    (("tuned", 1.0), ("garment", 1.0), ("colour", 0.5)),
    (("tuned", 1.0), ("garment", 1.0), ("colour", 0.7)),
    (("tuned", 1.0), ("garment", 1.0), ("colour", 1.0)),
    (("tuned", 1.0), ("garment", 1.0), ("colour", 1.4)),
    (("tuned", 1.0), ("garment", 1.0), ("colour", 2.0)),
    (("tuned", 0.5), ("garment", 1.0), ("colour", 0.7)),
    (("garment", 1.0), ("colour", 0.7)),
    (("tuned", 1.0), ("garment", 1.0), ("imagenet", 1.0), ("colour", 1.0)),
    (("cutout", 1.0),),
    (("tuned", 1.0), ("cutout", 1.0)),
    (("tuned", 1.0), ("cutout", 1.0), ("colour", 0.5)),
    (("tuned", 1.0), ("cutout", 1.0), ("colour", 0.7)),
    (("tuned", 1.0), ("cutout", 1.0), ("colour", 1.0)),
    (("tuned", 1.0), ("garment", 1.0), ("cutout", 1.0), ("colour", 0.7)),
    (("tuned", 1.0), ("garment", 1.0), ("cutout", 1.0), ("colour", 1.0)),
    (("tuned", 1.0), ("garment", 1.0), ("cutout", 1.4), ("colour", 1.0)),
)
DIMS = (128, 256, 512, 1024)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def embed(out: dict, parts) -> np.ndarray:
    return unit(np.concatenate([w * unit(out[p]) for p, w in parts], axis=1))


def choose(trained_path: Path, report_path: Path, cache: Path | None = None, recipe: PhotoRecipe = PhotoRecipe()):
    from ..nets.layers import keras
    from ..nets.torch_weights import MOBILENET_V2_SHA256, mobilenet_v2_weights, read_state_dict

    start = time.time()
    held = prepare(recipe.input_size, cache=cache)
    trained = keras.saving.load_model(trained_path, compile=False, custom_objects={"loss": None})
    imagenet = read_state_dict(mobilenet_v2_weights(), MOBILENET_V2_SHA256)
    probe = build_serving_model(trained, recipe, imagenet, probe=True)
    saved = report_path.with_suffix(".outputs.npz")  # probe outputs, kept for re-scoring other candidates
    if saved.is_file():
        with np.load(saved) as f:
            out = {}
            for key in f.files:
                group, name = key.split("/")
                out.setdefault(group, {})[name] = f[key]
    else:
        out = model_outputs(lambda x: batched(probe, x.astype(np.float32)), held)
        np.savez(saved, **{f"{g}/{k}": v for g, parts in out.items() for k, v in parts.items()})
    print(f"probe outputs in {time.time() - start:.0f} s", flush=True)
    variant_probs = {k: out[f"variant_{k}"]["probs"] for k in VARIANTS}
    rows = []
    for parts in CANDIDATES:
        embs = {s: embed(out[s], parts) for s in ("gallery", "queries", "retakes")}
        r = measure(held, (out["gallery"]["probs"], embs["gallery"]), (out["queries"]["probs"], embs["queries"]),
                    (out["retakes"]["probs"], embs["retakes"]), variant_probs if not rows else None)
        rows.append({"parts": [list(p) for p in parts], "dim": int(embs["gallery"].shape[1]), **r})
        print(json.dumps(rows[-1]), flush=True)
    report = {"candidates": rows}
    best = tuple(tuple(p) for p in recipe.parts)
    embs = {s: embed(out[s], best) for s in ("gallery", "queries", "retakes")}
    dims = []
    for dim in DIMS:
        pca = Projection.fit(embs["gallery"], dim)
        e = {s: unit(pca(v)) for s, v in embs.items()}
        r = measure(held, (out["gallery"]["probs"], e["gallery"]), (out["queries"]["probs"], e["queries"]),
                    (out["retakes"]["probs"], e["retakes"]))
        dims.append({"parts": [list(p) for p in best], "dim": dim, **r})
        print(json.dumps(dims[-1]), flush=True)
    report["dims"] = dims
    # Averaging with the mirrored photo: twice the forward pass per query; worth it only if it pays.
    flipped = {s: batched(probe, getattr(held, s)[:, :, ::-1].astype(np.float32)) for s in ("gallery", "queries",
                                                                                          "retakes")}
    mean = {s: {k: (out[s][k] + flipped[s][k]) / 2 for k in out[s]} for s in flipped}
    e = {s: embed(mean[s], best) for s in mean}
    r = measure(held, (mean["gallery"]["probs"], e["gallery"]), (mean["queries"]["probs"], e["queries"]),
                (mean["retakes"]["probs"], e["retakes"]))
    report["flip_average"] = {"parts": [list(p) for p in best], "dim": int(e["gallery"].shape[1]), **r}
    print(json.dumps(report["flip_average"]), flush=True)
    report_path.write_text(json.dumps(report, indent=1))
    print(f"done in {(time.time() - start) / 60:.1f} min; wrote {report_path}", flush=True)
    return report


if __name__ == "__main__":
    extra = dict(a.split("=", 1) for a in sys.argv[3:])
    r = PhotoRecipe()
    if "parts" in extra:
        r = replace(r, parts=tuple(tuple(p) for p in json.loads(extra["parts"])))
    choose(Path(sys.argv[1]), Path(sys.argv[2]), Path(extra["cache"]) if "cache" in extra else None, r)
