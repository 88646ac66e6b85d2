"""Running a trained model: class probabilities and a unit-length embedding per image.

Serving runs the ``.tflite`` conversion of each model on the LiteRT interpreter
(``ai-edge-litert``): a worker then never imports TensorFlow (about 520 MB per process),
and a photo query's forward pass takes a fifth of Keras' time. Training and the reference
checks run the ``.keras`` file through a compiled TensorFlow function; both runtimes offer
the same calls, and tests hold their outputs together.

A model file travels with its card (``models/NAME.json``): the class names, and the
settings tuned for it. The SHA-256 of the file is the model's identity: a catalog store
records it and refuses any other model.
"""
from __future__ import annotations

import json
import math
import threading
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from .files import file_sha256
from .imaging.decode import decode
from .imaging.model_input import decode_side, model_input

SERVING_SUFFIX = ".tflite"
TRAINING_SUFFIX = ".keras"


def card_path(model_path: Path) -> Path:
    """models/photos.tflite and models/photos.keras share models/photos.json."""
    return model_path.with_suffix(".json")


class InferenceModel:
    """What both runtimes share: identity, card, input preparation and the batch loop."""

    runtime = "abstract"
    input_shape: tuple[int, int, int]
    num_classes: int
    embedding_dim: int

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        card = card_path(self.path)
        if not card.is_file():
            raise FileNotFoundError(f"model card not found: {card} (written by `python -m app train` beside the model)")
        self.card = json.loads(card.read_text())
        self.name = self.card.get("name", self.path.stem)
        self.class_names = tuple(self.card["class_names"])

    @cached_property
    def sha256(self) -> str:
        return file_sha256(self.path)

    def prepare(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """A decoded picture (or a stored catalog array) as this model's input."""
        return model_input(image, self.input_shape)

    def decode(self, data: bytes, max_pixels: int, zoom: float = 1.0) -> Image.Image:
        """Upload bytes to a picture, decoding no more pixels than this model and the page need.

        ``zoom`` > 1 keeps that many times more pixels a side, for a crop of part of the picture.
        """
        return decode(data, max_pixels, min_side=math.ceil(decode_side(self.input_shape) * max(zoom, 1.0)))

    def forward_one(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, embedding) of one prepared input: the per-query hot path."""
        probs, emb = self._run(np.asarray(x, np.float32).reshape((1, *self.input_shape)))
        return probs[0], emb[0]

    def __call__(self, inputs: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, embeddings) for a batch of prepared inputs."""
        inputs = np.asarray(inputs, np.float32).reshape((-1, *self.input_shape))
        parts = [self._run(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
        if not parts:
            return np.zeros((0, self.num_classes), np.float32), np.zeros((0, self.embedding_dim), np.float32)
        return np.concatenate([p for p, _ in parts]), np.concatenate([e for _, e in parts])

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def unit_rows(emb: np.ndarray) -> np.ndarray:
    """Embeddings made unit-length again: an int8 model's last normalisation is rounded (norms 0.97-1.03),
    and cosine similarity is a dot product of unit rows."""
    return emb / np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)


class LiteRTModel(InferenceModel):
    """A ``.tflite`` model on the LiteRT interpreter (XNNPACK). One interpreter, one call at a time."""

    runtime = "litert"

    def __init__(self, path: str | Path, threads: int = 1):
        super().__init__(path)
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
            self._runner = self._interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"{self.path} is not a usable LiteRT model ({exc})") from None
        inputs, outputs = self._runner.get_input_details(), self._runner.get_output_details()
        if set(outputs) != {"probs", "embedding"} or len(inputs) != 1:
            raise ValueError(f"{self.path} must take one image and give 'probs' and 'embedding', "
                             f"it gives {sorted(outputs)}")
        (self._input_name, spec), = inputs.items()
        self.input_shape = tuple(int(d) for d in spec["shape_signature"][1:])
        self.num_classes = int(outputs["probs"]["shape_signature"][-1])
        self.embedding_dim = int(outputs["embedding"]["shape_signature"][-1])
        if self.num_classes != len(self.class_names):
            raise ValueError(f"{self.path} gives {self.num_classes} classes, its card names {len(self.class_names)}")
        self._lock = threading.Lock()
        self._run(np.zeros((1, *self.input_shape), np.float32))  # allocate and warm up now, not on a user's query

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            out = self._runner(**{self._input_name: np.ascontiguousarray(batch, np.float32)})
            return np.array(out["probs"]), unit_rows(np.array(out["embedding"]))


class KerasModel(InferenceModel):
    """A ``.keras`` model through a compiled TensorFlow function (25x faster than ``predict`` at batch 1)."""

    runtime = "keras"

    def __init__(self, path: str | Path):
        super().__init__(path)
        import tensorflow as tf

        from .nets.layers import keras  # registers the custom layers before loading

        try:
            self.model = keras.saving.load_model(self.path, compile=False)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{self.path} is not a loadable Keras model ({exc})") from None
        self.input_shape = tuple(int(d) for d in self.model.input_shape[1:])
        self.num_classes = int(self.model.output_shape[0][-1])
        self.embedding_dim = int(self.model.output_shape[1][-1])
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._forward = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])
        self._run(np.zeros((1, *self.input_shape), np.float32))  # trace once at load, not on the first query

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, emb = self._forward(batch)
        return probs.numpy(), emb.numpy()


def open_model(path: str | Path, threads: int = 1) -> InferenceModel:
    """The runtime follows the file: ``.tflite`` on LiteRT (serving), ``.keras`` on TensorFlow."""
    path = Path(path)
    if path.suffix == SERVING_SUFFIX:
        return LiteRTModel(path, threads)
    if path.suffix == TRAINING_SUFFIX:
        return KerasModel(path)
    raise ValueError(f"{path}: a model is a .tflite (serving) or .keras (training) file")
