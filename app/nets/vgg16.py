"""The paper's feature extractor for real photos: ImageNet VGG-16 (frozen) plus a softmax head.

Kept for users who have Keras' VGG-16 weights file (it cannot be downloaded everywhere);
the shipped photo model is the lighter MobileNetV2 (app/nets/mobilenet_v2.py).
"""
from __future__ import annotations

import os
from pathlib import Path

from .layers import VGGPreprocess, keras, layers
from .torch_weights import WeightsUnavailableError

NUM_CLASSES = 10
VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_NOTOP)


def resolve_vgg16_weights(weights: str | None) -> str | None:
    """Turn "imagenet" into a local file (Keras cache) or a path check, with an actionable error."""
    if weights is None:
        return None
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise WeightsUnavailableError(f"VGG-16 weights file not found: {weights}")
        return weights
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / VGG16_NOTOP
    if cached.is_file():
        return str(cached)
    try:
        # cache_dir named explicitly: Keras reads $KERAS_HOME only once, at import.
        return keras.utils.get_file(VGG16_NOTOP, VGG16_URL, cache_dir=str(cached.parent.parent),
                                    cache_subdir="models")
    except Exception as exc:
        raise WeightsUnavailableError(
            f"VGG-16 ImageNet weights are not in the Keras cache ({cached}) and could not be "
            f"downloaded ({type(exc).__name__}). On a machine with internet run:\n"
            f"  curl -L -o {VGG16_NOTOP} {VGG16_URL}\n"
            f"then pass `--vgg-weights PATH/{VGG16_NOTOP}` to `python -m app train --backbone vgg16`, "
            f"or copy the file to {cached.parent}/."
        ) from exc


def build_vgg16(input_shape: tuple[int, int, int] = (224, 224, 3), num_classes: int = NUM_CLASSES,
                weights: str | None = "imagenet") -> keras.Model:
    """The paper's feature extractor for real photos: VGG-16 (frozen) + softmax head.

    The embedding is the unit-normalised 512-d global-average-pooled conv feature.
    Input: RGB, pixel values 0-255, any size >= 32x32.
    """
    from keras.applications import VGG16

    base = VGG16(include_top=False, pooling="avg", weights=resolve_vgg16_weights(weights),
                 input_shape=input_shape)
    base.trainable = False
    inputs = keras.Input(input_shape, name="image")
    features = base(VGGPreprocess()(inputs))
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(layers.Dropout(0.3)(features))
    embedding = layers.UnitNormalization(name="embedding")(features)
    return keras.Model(inputs, [probs, embedding], name="fashion16_vgg16")
