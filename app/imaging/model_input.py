"""One decoded picture to one model input: the pipeline follows the model's input shape.

Grey single-channel models (the paper's Fashion-MNIST CNN) get the garment drawn as
Fashion-MNIST draws it; colour models (the photo model, the VGG-16 option) get the photo.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .decode import WORK_SIDE, decode
from .display import THUMBNAIL_SIDE
from .garment import garment_input
from .photo import photo_input


def model_input(img: Image.Image | np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """(h, w, c) float32, values 0-255."""
    h, w, channels = input_shape
    if channels == 3:
        if h != w:
            raise ValueError(f"colour models take square inputs, this one takes {h}x{w}")
        return photo_input(img, h)
    if channels != 1:
        raise ValueError(f"models take 1 (grey) or 3 (RGB) channels, not {channels}")
    return garment_input(img, (h, w))[..., None]


def decode_side(input_shape: tuple[int, int, int]) -> int:
    """How many pixels a side decoding must keep (JPEGs decode at 1/2..1/8 scale down to it).

    Colour models need their input size, and the results page a 256-px thumbnail of the upload:
    a 12-megapixel phone JPEG then decodes at 1/8 scale (504x378). The grey pipeline looks for
    the garment's outline at WORK_SIDE.
    """
    return max(input_shape[0], THUMBNAIL_SIDE) if input_shape[2] == 3 else WORK_SIDE


def file_input(data: bytes, input_shape: tuple[int, int, int], max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes to model input; raises ImageRejected for anything unusable."""
    kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
    return model_input(decode(data, min_side=decode_side(input_shape), **kwargs), input_shape)
