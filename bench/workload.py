"""The Fashion-MNIST gallery and queries through the served model once, and catalogs assembled from them.

Quality by code length, the paper's tables and the small served store all read these
outputs, so the model runs over the images once per benchmark run. Catalogs are the
app's own ``Catalog`` over an in-memory store: queries go through ``Catalog.search``
exactly as an upload's decoded picture would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.catalog import Catalog
from app.fashion_mnist import load_fashion_mnist
from app.runtime import InferenceModel
from app.sources import content_hash
from app.stores import Manifest, MemoryStore, NewItems, Store

MEMORY = Path("<memory>")  # the uploads folder of a catalog that lives only in this process


@dataclass
class Workload:
    """Gallery and query images with their model outputs, computed once per run."""

    model: InferenceModel
    gallery_images: np.ndarray  # (n, 28, 28) uint8, as stored
    gallery_inputs: np.ndarray  # (n, 28, 28) uint8, as the model took them (model.prepare, lossless in uint8)
    gallery_labels: np.ndarray  # (n,) int16
    gallery_emb: np.ndarray     # (n, dim) float32
    query_images: np.ndarray
    query_labels: np.ndarray
    query_emb: np.ndarray
    query_probs: np.ndarray

    @classmethod
    def load(cls, model: InferenceModel, gallery: int, queries: int) -> Workload:
        """The first ``gallery`` training images and the first ``queries`` test images (a fixed subset)."""
        data = load_fashion_mnist(download=False)
        g_images, q_images = data.x_train[:gallery], data.x_test[:queries]
        g_inputs = np.stack([model.prepare(x) for x in g_images])
        _, g_emb = model(g_inputs)
        q_probs, q_emb = model(np.stack([model.prepare(x) for x in q_images]))
        return cls(model, g_images, g_inputs[..., 0].astype(np.uint8), data.y_train[:gallery].astype(np.int16),
                   g_emb, q_images, data.y_test[:queries].astype(np.int16), q_emb, q_probs)

    def manifest(self, bits: int, model: InferenceModel | None = None) -> Manifest:
        model = model or self.model
        return Manifest(catalog="fashion-mnist", model_file=model.path.name, model_sha256=model.sha256,
                        class_names=model.class_names, source="fashion-mnist", bits=bits)

    def write(self, store: Store, bits: int, n: int | None = None, embeddings: np.ndarray | None = None,
              model: InferenceModel | None = None) -> Store:
        """The first ``n`` gallery items as one version of ``store``, filed under their known labels."""
        labels = self.gallery_labels[:n]
        emb = self.gallery_emb[:n] if embeddings is None else embeddings[:n]
        images = self.gallery_images[:n]
        writer = store.rebuild(self.manifest(bits, model), seed=0)
        writer.add(NewItems(emb, labels, labels, [content_hash(x.tobytes()) for x in images],
                            [f"train/{i}" for i in range(len(images))], images))
        writer.commit()
        return store

    def store(self, bits: int, n: int | None = None, embeddings: np.ndarray | None = None,
              model: InferenceModel | None = None) -> Store:
        """An in-memory store of the first ``n`` gallery items."""
        return self.write(MemoryStore("fashion-mnist"), bits, n, embeddings, model)

    def catalog(self, bits: int, n: int | None = None) -> Catalog:
        store = self.store(bits, n)
        return Catalog("fashion-mnist", self.model, store, store.snapshot(), MEMORY)

    @property
    def classifier_accuracy(self) -> float:
        return float(np.mean(self.query_probs.argmax(1) == self.query_labels))
