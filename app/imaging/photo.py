"""Colour photos as the photo model takes them."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .modes import as_image, flatten


def photo_input(img: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """The photo scaled so its shorter side is ``size``, centre-cropped to ``size`` x ``size`` RGB (float32 0-255).

    Chosen on the validation photos over squashing the whole photo square (0.900) and
    letterboxing it (0.897): the centre crop (0.918-0.921) matches what the model saw in
    training (random crops close to square) and keeps the garment, which phone photos centre.
    """
    rgb = flatten(as_image(img), side=4 * size).convert("RGB")
    scale = size / min(rgb.size)
    w, h = max(size, round(rgb.width * scale)), max(size, round(rgb.height * scale))
    rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(rgb.crop((left, top, left + size, top + size)), np.float32)
