"""Shared fixtures: the real data, the committed models on the serving runtime, and small real stores.

Models load in about a second on LiteRT, so fixtures stay cheap (flaskr's habit) while every
test uses the real thing: real photos, the committed models, real HDF5 files. The small
stores (2,000 Fashion-MNIST training images; 40 catalog photos per category) exercise the
same code paths as the full catalogs.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from app.catalog import catalog_store
from app.fashion_mnist import load_fashion_mnist
from app.photo_dataset import PhotoSet, load_photos
from app.settings import ROOT, Settings

MODELS = ROOT / "models"
SMALL_FASHION = 2000
PHOTOS_PER_CATEGORY = 40


def reachable_folder(name: str) -> Path:
    """A temporary folder FASHION16_USER (nobody) can enter: servers the tests start as root serve as that
    user, whose workers follow new catalog versions there. pytest's own temp folders are root's alone
    (and a concurrent pytest session resets them so), hence one beside them, removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=f"fashion16-test-{name}-"))
    folder.chmod(0o711)
    _made.append(folder)
    return folder


_made: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _remove_reachable_folders():
    yield
    for folder in _made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def fmnist():
    return load_fashion_mnist(download=False)


@pytest.fixture(scope="session")
def fashion_model():
    from app.runtime import LiteRTModel

    return LiteRTModel(MODELS / "fashion16.tflite")


@pytest.fixture(scope="session")
def photo_model():
    from app.runtime import LiteRTModel

    return LiteRTModel(MODELS / "photos.tflite")


def first_per_category(photos: PhotoSet, n: int) -> PhotoSet:
    keep = np.concatenate([np.flatnonzero(photos.labels == c)[:n] for c in np.unique(photos.labels)])
    return PhotoSet(photos.root, tuple(photos.paths[i] for i in keep), photos.labels[keep])


@pytest.fixture(scope="session")
def catalog_photos() -> PhotoSet:
    """A small photo catalog: the first PHOTOS_PER_CATEGORY training photos of each category."""
    return first_per_category(load_photos("train"), PHOTOS_PER_CATEGORY)


@pytest.fixture(scope="session")
def test_photos() -> PhotoSet:
    return load_photos("test")


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory, fashion_model, photo_model, fmnist, catalog_photos):
    """A store folder holding both built-in catalogs, small: what the app, CLI and gunicorn tests serve."""
    from app.indexer import build
    from app.sources import FashionMNISTSource, FolderSource

    folder = reachable_folder("stores")
    settings = Settings(store_dir=folder)
    build(catalog_store(settings, "fashion-mnist"), fashion_model, FashionMNISTSource(limit=SMALL_FASHION),
          "fashion-mnist")
    files = [catalog_photos.root / p for p in catalog_photos.paths]
    source = FolderSource(catalog_photos.root, kind="photos", files=files)
    build(catalog_store(settings, "photos"), photo_model, source, "photos")
    return folder


@pytest.fixture(scope="session")
def settings(store_dir, tmp_path_factory) -> Settings:
    """The small stores; saved searches (results addresses) in a folder of this session's."""
    return Settings(store_dir=store_dir, workers=1, results_dir=tmp_path_factory.mktemp("saved-searches"))


@pytest.fixture(scope="session")
def catalogs(settings):
    from app.catalog import open_catalogs

    return open_catalogs(settings)


@pytest.fixture(scope="session")
def web_app(settings):
    """The web app on the small stores; TESTING lets a server error fail the test instead of becoming a 500."""
    from app import create_app

    return create_app(settings, {"TESTING": True})


@pytest.fixture()
def client(web_app):
    return web_app.test_client()


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    out = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def query_png(fmnist) -> bytes:
    """A Fashion-MNIST test image (not in any catalog) as an uploaded PNG."""
    return png_bytes(fmnist.x_test[0])


@pytest.fixture(scope="session")
def query_photo(test_photos) -> bytes:
    """A real test photo (a pair of shoes, not in the catalog) as uploaded."""
    return test_photos.read(int(np.flatnonzero(test_photos.labels == 6)[0]))


# ---------------------------------------------------------------- the shipped deployment (tests/serving_helpers.py)

@pytest.fixture(scope="session")
def query_images(fmnist) -> list[bytes]:
    """Fashion-MNIST test images (never in a store) as PNG uploads."""
    return [png_bytes(x) for x in fmnist.x_test[:8]]


@pytest.fixture(scope="module")
def proxied(store_dir, tmp_path_factory):
    """The shipped deployment (nginx in front of gunicorn), one worker with two threads."""
    from serving_helpers import deployment

    with deployment(store_dir, tmp_path_factory.mktemp("proxied") / "serve.log") as running:
        yield running


@pytest.fixture(scope="module")
def direct(store_dir, tmp_path_factory):
    """gunicorn alone (`serve --no-proxy`), one worker with two threads."""
    from serving_helpers import deployment

    with deployment(store_dir, tmp_path_factory.mktemp("direct") / "serve.log", proxy=False) as running:
        yield running


# ---------------------------------------------------------------- Milvus (tests/store_helpers.py: PLACES)

@pytest.fixture(scope="session")
def milvus_lite_place(tmp_path_factory) -> str:
    """One Milvus Lite file for the session (one Lite process; each store takes its own collection prefix)."""
    from store_helpers import PLACES

    PLACES["milvus-lite"] = f"milvus-lite:{tmp_path_factory.mktemp('milvus-lite') / 'stores.db'}"
    return PLACES["milvus-lite"]


@pytest.fixture(scope="session")
def milvus_place(tmp_path_factory) -> str:
    """A real Milvus server (standalone 2.3, started by the `milvus` package in about 12 s), stopped at the end."""
    from bench.milvus_server import start_server
    from store_helpers import PLACES

    server = start_server(tmp_path_factory.mktemp("milvus-server"))
    PLACES["milvus"] = f"milvus://127.0.0.1:{server.listen_port}"
    yield PLACES["milvus"]
    server.stop()
