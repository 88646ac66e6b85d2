"""Any decoded picture (PIL image or array, any mode) as plain 8-bit greyscale or RGB."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .decode import WORK_SIDE

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


def as_image(img: Image.Image | np.ndarray) -> Image.Image:
    """Arrays (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) with values 0-255 as a PIL image (rounded to 8 bits)."""
    if isinstance(img, Image.Image):
        return img
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return Image.fromarray(np.rint(np.clip(arr, 0, 255)).astype(np.uint8))


def flatten(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """Any mode (palette, CMYK, 16-bit, transparent) to 8-bit "L" or "RGB", at most ``side`` a side.

    Large images shrink first, in their own mode where Pillow can (cheap integer reduction),
    so no full-size colour copy is ever made. Transparency becomes white, the usual
    background of a product cut-out.
    """
    factor = max(img.size) // side
    if factor >= 2 and img.mode in ("L", "RGB", "RGBA", "LA", "I", "F", "CMYK"):
        img = img.reduce(factor)
    if img.mode in SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float32)
        img = Image.fromarray(np.rint(255.0 * arr / max(float(arr.max()), 1.0)).astype(np.uint8))
    elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    img = img.convert("L" if img.mode in ("L", "1") else "RGB")
    img.thumbnail((side, side), Image.Resampling.BOX)
    return img


def to_grey(img: Image.Image) -> np.ndarray:
    """A decoded image as a float greyscale array (0-255)."""
    return np.asarray(flatten(img).convert("L"), dtype=np.float32)
