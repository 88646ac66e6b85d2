"""Photos of garments as Fashion-MNIST draws them: grey, light on black, trimmed, scaled, centred.

Fashion-MNIST items are greyscale, light on a black background, trimmed to the garment,
scaled so the longest side fills the frame and centred. Photos of clothes are usually
dark-on-light, colour, shaded, noisy and of any size, so each of those is undone here.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .modes import as_image, to_grey

BORDER = 0.06        # share of width/height along the edges read as "background"
FOREGROUND = 0.12    # share of the garment's brightest level above which a pixel is garment
OUTLIER = 40.0       # grey levels: a border pixel this far from the background fit is garment
MIN_CONTRAST = 12.0  # grey levels: weaker "garments" are JPEG ringing or noise on a blank photo


def corner_level(grey: np.ndarray) -> float:
    """The median of the four corner patches' medians: the first guess at the background.

    Corners, not whole borders: a garment often touches an edge (trousers top to bottom)
    but rarely fills a corner, let alone two.
    """
    h, w = grey.shape
    ch, cw = max(1, round(h * BORDER)), max(1, round(w * BORDER))
    return float(np.median([np.median(grey[rows, cols]) for rows in (slice(0, ch), slice(h - ch, h))
                            for cols in (slice(0, cw), slice(w - cw, w))]))


def border_pixels(grey: np.ndarray, most: int = 5_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of an even sample of the pixels in the BORDER-wide frame of the image."""
    h, w = grey.shape
    bh, bw = max(1, round(h * BORDER)), max(1, round(w * BORDER))
    frame = np.ones((h, w), bool)
    frame[bh: h - bh, bw: w - bw] = False
    rows, cols = np.nonzero(frame)
    step = max(1, len(rows) // most)
    rows, cols = rows[::step], cols[::step]
    return rows, cols, grey[rows, cols]


def background(grey: np.ndarray) -> np.ndarray:
    """The background as a plane fitted to the border, so uneven lighting is subtracted too.

    Border pixels far from the corners' level, then far from the first fit, are garment
    touching the edge and are left out of the fit.
    """
    h, w = grey.shape
    rows, cols, values = border_pixels(grey)
    design = np.stack([np.ones(len(values)), rows / h, cols / w], axis=1)
    coef = np.array([corner_level(grey), 0.0, 0.0])
    for tolerance in (OUTLIER, OUTLIER / 2):
        keep = np.abs(design @ coef - values) < tolerance
        if keep.sum() >= 3:
            coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
    y = np.arange(h, dtype=np.float32)[:, None] / h
    x = np.arange(w, dtype=np.float32)[None, :] / w
    return (coef[0] + coef[1] * y + coef[2] * x).astype(np.float32)


def foreground(grey: np.ndarray) -> np.ndarray:
    """Garment light on black, its brightest (99.5th percentile) level stretched to 255; all zero if none."""
    bg = background(grey)
    if float(np.median(bg)) > 127:  # light background: negate so the garment is the light part
        grey, bg = 255.0 - grey, 255.0 - bg
    fg = np.clip(grey - bg, 0, None)
    peak = float(np.percentile(fg, 99.5))
    return np.clip(fg * (255.0 / peak), 0, 255) if peak >= MIN_CONTRAST else np.zeros_like(fg)


def garment_box(fg: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the garment pixels; a pixel counts only if its blurred neighbourhood does too,
    so specks of noise and JPEG ringing do not widen the box, and the blur does not either."""
    radius = max(1.0, max(fg.shape) / 200)
    smooth = np.asarray(Image.fromarray(fg.astype(np.uint8)).filter(ImageFilter.BoxBlur(radius)))
    mask = (fg > 255.0 * FOREGROUND) & (smooth > 255.0 * FOREGROUND)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit(img: Image.Image, size: tuple[int, int], fill: int | tuple[int, ...] = 0) -> Image.Image:
    """Resize so the longest side fills ``size`` (h, w), aspect kept, centred on ``fill``."""
    scale = min(size[0] / img.height, size[1] / img.width)
    new_w, new_h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    out = Image.new(img.mode, (size[1], size[0]), fill)
    out.paste(img.resize((new_w, new_h), Image.Resampling.LANCZOS), ((size[1] - new_w) // 2, (size[0] - new_h) // 2))
    return out


def normalise(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Greyscale array to a Fashion-MNIST-like uint8 image of ``size`` (h, w)."""
    fg = foreground(grey)
    if not fg.any():
        return np.zeros(size, np.uint8)
    crop = fg[garment_box(fg)]
    return np.asarray(fit(Image.fromarray(crop.astype(np.uint8)), size))


def is_model_ready(grey: np.ndarray, size: tuple[int, int]) -> bool:
    """A catalog image already in Fashion-MNIST form (exact size, dark border) is used as is."""
    if grey.shape != size:
        return False
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(edge)) < 16


def garment_input(img: Image.Image | np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A decoded image (PIL or array) as a Fashion-MNIST-like float32 (h, w) array, values 0-255."""
    if isinstance(img, np.ndarray) and img.shape[:2] == size and img.size == size[0] * size[1]:
        grey = img.reshape(size).astype(np.float32)  # model-sized grey (gallery items): no PIL round trip
    else:
        grey = to_grey(as_image(img))
    return np.asarray(grey if is_model_ready(grey, size) else normalise(grey, size), np.float32)
