"""Colour photos as the photo model takes them."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .modes import as_image, flatten


def photo_input(img: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """The whole photo resized to ``size`` x ``size`` RGB, values 0-255 (float32).

    Squashed, not cropped or padded: the model trained on random crops of aspect 3/4 to 4/3,
    which covers a portrait phone photo made square, and nothing of the garment is cut off.
    """
    rgb = flatten(as_image(img), side=2 * size).convert("RGB")
    return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR), np.float32)
