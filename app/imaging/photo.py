"""Colour photos as the photo model takes them."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .modes import as_image, flatten

# Scaled photos up to this many times the model's side on their long side are scaled whole and
# cropped (what the model was tuned on); longer strips have only their centre scaled.
WHOLE_SCALE_LIMIT = 2


def photo_input(img: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """The photo scaled so its shorter side is ``size``, centre-cropped to ``size`` x ``size`` RGB (float32 0-255).

    Chosen on the validation photos over squashing the whole photo square (0.900) and
    letterboxing it (0.897): the centre crop (0.918-0.921) matches what the model saw in
    training (random crops close to square) and keeps the garment, which phone photos centre.
    A strip (a 10000x1 upload would have become a 147,456x192 image, 15 times the cost of a
    search) has just the part that becomes the centre square scaled: the same pixels, within
    rounding, at the cost of a square photo.
    """
    rgb = flatten(as_image(img), side=4 * size).convert("RGB")
    scale = size / min(rgb.size)
    w, h = max(size, round(rgb.width * scale)), max(size, round(rgb.height * scale))
    left, top = (w - size) // 2, (h - size) // 2
    if max(w, h) > WHOLE_SCALE_LIMIT * size:
        sx, sy = rgb.width / w, rgb.height / h  # the centre square's box in the photo's own pixels
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR, box=box), np.float32)
    rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(rgb.crop((left, top, left + size, top + size)), np.float32)
