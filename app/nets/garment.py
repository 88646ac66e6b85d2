"""What makes the photo model look at the garment: a mask head, mask-weighted pooling and a
garment-weighted colour histogram (the two layers live in layers.py, registered for loading).
All are plain Keras layers, saved with the model and converted to LiteRT: serving and catalog
indexing need only the ``.tflite`` file, never a segmentation model.
"""
from __future__ import annotations

from .layers import layers


def mask_head(stride16, stride32, name: str = "mask"):
    """Garment mask logits at stride 16 (12x12 for a 192-px photo), from both feature scales.

    A light feature-pyramid head: the last features (what) upsampled onto the stride-16 ones
    (where), one 3x3 convolution, one logit per cell. Trained against U-2-Net-p masks.
    """
    top = layers.Conv2D(64, 1, name=f"{name}.top")(stride32)
    lateral = layers.Conv2D(64, 1, name=f"{name}.lateral")(stride16)
    x = layers.Add(name=f"{name}.add")([layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}.up")(top),
                                        lateral])
    x = layers.ReLU(name=f"{name}.relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name=f"{name}.conv")(x)
    return layers.Conv2D(1, 1, name=f"{name}.logits")(x)
