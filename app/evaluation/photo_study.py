"""How much accuracy the Fashion-MNIST model's upload path loses on photo-like images, variant by variant.

The paper's model knows 28x28 silhouettes only, so photo-like images are made from
Fashion-MNIST test images (real photos are the photo catalog's, see evaluation/photos.py):
each one undoes a step of how the data set was made (upscaled, padded off-centre,
coloured, dark garment on a light background, shaded, noisy, JPEG) and goes through the
real upload path, ``file_input(bytes)``, and the real model. The drop against the
untouched test images is what the preprocessing costs.
"""
from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from ..imaging.model_input import file_input
from ..progress import Progress
from ..runtime import InferenceModel

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
MIN_CONTRAST = 90.0  # least luminance gap between garment and background, as on a product photo

VARIANTS: dict[str, dict[str, bool]] = {
    "upscaled": {},
    "padded": {"pad": True},
    "tinted": {"tint": True},
    "on_white": {"light": True},
    "shaded": {"light": True, "shade": True},
    "noisy": {"noise": True},
    "jpeg": {"jpeg": True},
    "photo": {"pad": True, "tint": True, "light": True, "shade": True, "noise": True, "jpeg": True},
}


def _pad(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Widen and heighten the frame by up to 60% each, garment placed anywhere inside it."""
    h, w = alpha.shape
    big_h, big_w = int(h * rng.uniform(1.0, 1.6)), int(w * rng.uniform(1.0, 1.6))
    top, left = int(rng.integers(0, big_h - h + 1)), int(rng.integers(0, big_w - w + 1))
    out = np.zeros((big_h, big_w), np.float32)
    out[top: top + h, left: left + w] = alpha
    return out


def _colour(rng: np.random.Generator, tint: bool, background_luma: float) -> np.ndarray:
    """The garment's RGB: white or black, or a random hue at least MIN_CONTRAST from the background."""
    light = background_luma > 127
    if not tint:
        return np.zeros(3, np.float32) if light else np.full(3, 255.0, np.float32)
    rgb = rng.uniform(0.05, 1.0, 3).astype(np.float32)
    low, high = (0.0, background_luma - MIN_CONTRAST) if light else (MIN_CONTRAST, 255.0)
    return np.clip(rgb * rng.uniform(low + 1, high) / float(rgb @ LUMA), 0, 255)


def _background(shape: tuple[int, int], rng: np.random.Generator, light: bool) -> np.ndarray:
    """Black, or light grey with a slight colour cast."""
    if not light:
        return np.zeros((*shape, 3), np.float32)
    base = rng.uniform(200, 250) + rng.uniform(-5, 5, 3)
    return np.broadcast_to(base.astype(np.float32), (*shape, 3)).copy()


def _lighting(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Uneven light: a linear ramp multiplying the whole scene by 0.85-1.15 at its extremes."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    dy, dx = rng.uniform(-1, 1, 2)
    ramp = dy * (ys / shape[0] - 0.5) + dx * (xs / shape[1] - 0.5)
    return 1.0 + rng.uniform(0.1, 0.3) * ramp


def photo_like(image: np.ndarray, rng: np.random.Generator, pad: bool = False, tint: bool = False,
               light: bool = False, shade: bool = False, noise: bool = False, jpeg: bool = False) -> bytes:
    """One 28x28 Fashion-MNIST image as the encoded file of a photo-like image (garment 200-600 px).

    The Fashion-MNIST intensity is the garment's opacity over the background, so a black
    garment on a light ground is the negated original, as the data set's photos were.
    """
    side = int(rng.integers(200, 601))
    alpha = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255.0
    alpha = np.clip(alpha, 0.0, 1.0)
    if pad:
        alpha = _pad(alpha, rng)
    bg = _background(alpha.shape, rng, light)
    colour = _colour(rng, tint, float(bg[0, 0] @ LUMA))
    rgb = bg * (1.0 - alpha[..., None]) + colour * alpha[..., None]
    if shade:
        rgb *= _lighting(alpha.shape, rng)[..., None]
    if noise:
        rgb += rng.normal(0.0, rng.uniform(2.0, 6.0), rgb.shape).astype(np.float32)
    out = io.BytesIO()
    pil = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    if jpeg:
        pil.save(out, "JPEG", quality=int(rng.integers(60, 91)))
    else:
        pil.save(out, "PNG")
    return out.getvalue()


def accuracy(model: InferenceModel, inputs: np.ndarray, labels: np.ndarray) -> float:
    probs, _ = model(inputs)
    return float(np.mean(probs.argmax(1) == labels))


def run_variant(model: InferenceModel, images: np.ndarray, labels: np.ndarray, options: dict[str, bool],
                seed: int, progress: Progress | None = None) -> dict:
    """Accuracy of one variant; the same seed for every variant so they differ only in ``options``."""
    rng = np.random.default_rng(seed)
    files = []
    for img in images:
        files.append(photo_like(img, rng, **options))
        if progress is not None:
            progress.update()
    start = time.perf_counter()
    inputs = np.stack([file_input(f, model.input_shape) for f in files])
    ms = 1000 * (time.perf_counter() - start) / max(len(files), 1)
    return {"accuracy": accuracy(model, inputs, labels), "upload_ms_per_image": round(ms, 2)}


def run_study(model: InferenceModel, images: np.ndarray, labels: np.ndarray,
              variants: dict[str, dict[str, bool]] | None = None, seed: int = 0) -> dict:
    """Clean accuracy (the test images as they are) and, per variant, accuracy and drop in points."""
    clean = accuracy(model, np.stack([model.prepare(img) for img in images]), labels)
    report = {"n": len(images), "seed": seed, "clean_accuracy": clean, "variants": {}}
    chosen = VARIANTS if variants is None else variants
    progress = Progress(len(images) * len(chosen), "photo study", unit="images")
    for name, options in chosen.items():
        result = run_variant(model, images, labels, options, seed, progress)
        result["drop_points"] = round(100 * (clean - result["accuracy"]), 2)
        report["variants"][name] = result
    progress.close()
    return report


def summary(report: dict) -> str:
    lines = [f"photo study on {report['n']} Fashion-MNIST test images (seed {report['seed']})",
             f"  {'clean':<10} accuracy {report['clean_accuracy']:.4f}"]
    for name, r in report["variants"].items():
        lines.append(f"  {name:<10} accuracy {r['accuracy']:.4f}  drop {r['drop_points']:5.2f} points  "
                     f"({r['upload_ms_per_image']:.1f} ms/upload)")
    return "\n".join(lines)
