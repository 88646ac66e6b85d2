"""The VGG-16 option end to end on a real folder of photos: train the head, index, search.

Runs with ``weights=None`` on 32x32 inputs (ImageNet weights cannot be downloaded here),
which exercises every line a user with the weights file runs.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.data import CLASS_NAMES
from app.index_store import read_index, write_index
from app.indexer import build_index, open_gallery
from app.model import Embedder
from app.search import Searcher
from app.train import train_vgg16

FOLDERS = {"Trouser": 1, "ankle_boot": 9, "bag": 8}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, fmnist):
    """Photo-like PNGs (dark garment on white, 96 px) in category folders, plus one unsorted photo."""
    root = tmp_path_factory.mktemp("catalog")
    for folder, label in FOLDERS.items():
        (root / folder).mkdir()
        for n, i in enumerate(np.flatnonzero(fmnist.y_train == label)[:4]):
            photo = Image.fromarray(255 - fmnist.x_train[i]).resize((96, 96)).convert("RGB")
            photo.save(root / folder / f"{n}.png")
    Image.fromarray(255 - fmnist.x_test[0]).resize((80, 120)).save(root / "unsorted.jpg")
    return root


@pytest.fixture(scope="module")
def vgg_model(catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("vgg") / "vgg16.keras"
    card = train_vgg16(out, catalog, weights=None, input_size=32, epochs=1, batch_size=8)
    assert card["training"]["images"] == 12  # the unsorted photo has no label to learn from
    return out


def test_vgg16_catalog_trains_indexes_and_searches(vgg_model, catalog, tmp_path):
    embedder = Embedder(vgg_model)
    assert embedder.input_shape == (32, 32, 3) and embedder.embedding_dim == 512
    index = build_index(embedder, open_gallery(str(catalog)), bits=64)
    path = write_index(index, tmp_path / "catalog.h5")
    searcher = Searcher(embedder, read_index(path, model_sha256=embedder.sha256))
    assert len(searcher.index) == 13 and searcher.index.paths is not None
    labels = {p: int(lab) for p, lab in zip(searcher.index.paths, searcher.index.labels)}
    assert labels["unsorted.jpg"] == -1
    assert {labels[f"{f}/0.png"] for f in FOLDERS} == {CLASS_NAMES.index("Trouser"), 9, 8}
    query = (catalog / "bag" / "2.png").read_bytes()
    result = searcher.search(query, k=13, mode="direct")
    top = result.hits[0]
    assert searcher.index.paths[top.id] == "bag/2.png" and top.similarity > 0.999
    assert searcher.item_image(top.id) == query


def test_vgg16_training_without_data_is_a_clear_cli_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "app", "train", "--backbone", "vgg16", "--out",
                           str(tmp_path / "x.keras")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--data DIR" in proc.stderr and "Traceback" not in proc.stderr
