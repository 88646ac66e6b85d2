"""Shared fixtures: the real data, the committed default model, and a small real index.

The small index (3,000 Fashion-MNIST training images, built with the committed model)
keeps tests fast while exercising the same code paths as the 60,000-image default.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from app.config import DEFAULT_MODEL
from app.data import load_fashion_mnist

SMALL_GALLERY = 3000


@pytest.fixture(scope="session")
def fmnist():
    return load_fashion_mnist(download=False)


@pytest.fixture(scope="session")
def model_path():
    assert DEFAULT_MODEL.is_file(), f"the committed default model is missing: {DEFAULT_MODEL}"
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def embedder(model_path):
    from app.model import Embedder

    return Embedder(model_path)


@pytest.fixture(scope="session")
def small_index_path(tmp_path_factory, embedder, fmnist):
    """A real HDF5 index of the first SMALL_GALLERY training images, filed under their true labels."""
    from app.index_store import write_index
    from app.indexer import assemble

    images, labels = fmnist.x_train[:SMALL_GALLERY], fmnist.y_train[:SMALL_GALLERY].astype(np.int16)
    _, emb = embedder(images)
    index = assemble(emb, labels, labels, embedder.sha256, bits=256, seed=0, images=images)
    return write_index(index, tmp_path_factory.mktemp("index") / "small.h5")


@pytest.fixture(scope="session")
def searcher(embedder, small_index_path):
    from app.index_store import read_index
    from app.search import Searcher

    return Searcher(embedder, read_index(small_index_path, model_sha256=embedder.sha256))


@pytest.fixture(scope="session")
def web_app(model_path, small_index_path):
    """The web app on the small index; TESTING lets a server error fail the test instead of becoming a 500."""
    from app import create_app

    return create_app({"MODEL_PATH": str(model_path), "INDEX_PATH": str(small_index_path), "TESTING": True})


@pytest.fixture()
def client(web_app):
    return web_app.test_client()


@pytest.fixture(scope="session")
def query_png(fmnist) -> bytes:
    """A Fashion-MNIST test image (not in any gallery) as an uploaded PNG."""
    from app.web.imaging import png_bytes

    return png_bytes(fmnist.x_test[0])
