"""Keras model -> LiteRT (``.tflite``) model for serving, with named outputs.

The converted file takes a batch of prepared images (any batch size) and gives a
signature with two named outputs, ``probs`` and ``embedding``, so the serving runtime
never depends on output order. By default weights stay float32: outputs agree with Keras to
about 1e-5 (tests/test_runtime.py). With ``representative`` inputs the conversion is full-integer
int8 (weights and activations; the input and outputs stay float32, so callers see no change):
LiteRT's int8 kernels take about half the time on this CPU, and the outputs agree with Keras'
to a tolerance measured in tests/test_runtime.py. A catalog store is built with the very file
that serves its queries, so either way queries and catalog share one runtime.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..files import write_atomically
from ..runtime import SERVING_SUFFIX


def convert(keras_path: str | Path, out: str | Path | None = None, representative: np.ndarray | None = None) -> Path:
    """Write ``models/NAME.tflite`` beside ``models/NAME.keras`` (or at ``out``), atomically; full-integer
    int8 when ``representative`` (prepared inputs, a few hundred) is given to calibrate activations."""
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
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if representative is not None:
            samples = np.asarray(representative, np.float32)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([x[None]] for x in samples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        data = converter.convert()
    return write_atomically(out, data)


def float32_conversion(keras_path: str | Path) -> Path:
    """The float32 LiteRT conversion of ``keras_path`` (with a copy of its card), kept in the weights cache under
    the ``.keras`` file's SHA-256: an int8-served model's unrounded twin, for the bench and the tests, converted
    once (about 25 s) rather than by each."""
    from ..files import file_sha256
    from ..nets.torch_weights import weights_cache_dir

    keras_path = Path(keras_path)
    folder = weights_cache_dir() / "float32-conversions" / file_sha256(keras_path)[:16]
    out = folder / keras_path.with_suffix(SERVING_SUFFIX).name
    if not out.is_file():  # written atomically: a file there is a whole conversion
        folder.mkdir(parents=True, exist_ok=True)
        convert(keras_path, out)
    shutil.copy(keras_path.with_suffix(".json"), out.with_suffix(".json"))
    return out
