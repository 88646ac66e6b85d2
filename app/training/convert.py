"""Keras model -> LiteRT (``.tflite``) model for serving, with named outputs.

The converted file takes a batch of prepared images (any batch size) and gives a
signature with two named outputs, ``probs`` and ``embedding``, so the serving runtime
never depends on output order. Weights stay float32: outputs agree with Keras to about
1e-5 (tests/test_runtime.py), so the same catalog store serves either runtime's queries.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..files import write_atomically
from ..runtime import SERVING_SUFFIX


def convert(keras_path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``models/NAME.tflite`` beside ``models/NAME.keras`` (or at ``out``), atomically."""
    import tensorflow as tf

    from ..nets.layers import keras

    keras_path = Path(keras_path)
    out = Path(out) if out else keras_path.with_suffix(SERVING_SUFFIX)
    model = keras.saving.load_model(keras_path, compile=False)
    shape = tuple(model.input_shape[1:])

    def serve(image):
        probs, embedding = model(image, training=False)
        return {"probs": probs, "embedding": embedding}

    # Through Keras' SavedModel export, which tracks the model's variables so that the
    # conversion freezes them into the file (a bare tf.function's conversion leaves them out).
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[tf.TensorSpec((None, *shape), tf.float32,
                                                                                  name="image")])
    with tempfile.TemporaryDirectory() as saved:
        archive.write_out(saved, verbose=False)
        data = tf.lite.TFLiteConverter.from_saved_model(saved).convert()
    return write_atomically(out, data)
