"""The VGG-16 option end to end on a real folder of photos: train the head, convert, index, search.

Runs with ``weights=None`` on 32x32 inputs (Keras' ImageNet VGG-16 weights cannot be
downloaded here), which exercises every line a user with the weights file runs.
"""
from __future__ import annotations

import numpy as np
import pytest

from app.catalog import Catalog
from app.indexer import build
from app.runtime import LiteRTModel
from app.sources import FolderSource
from app.stores import Hdf5Store
from app.training.vgg16 import train_vgg16

FOLDERS = ("Dress", "Shoes", "Hat")


@pytest.fixture(scope="module")
def shop(tmp_path_factory, test_photos):
    """Real photos in three category folders (named as a shop would), plus one unsorted photo."""
    from app.photo_dataset import CLASS_NAMES

    root = tmp_path_factory.mktemp("shop")
    for folder in FOLDERS:
        (root / folder).mkdir()
        for n, i in enumerate(np.flatnonzero(test_photos.labels == CLASS_NAMES.index(folder))[:4]):
            (root / folder / f"{n}.jpg").write_bytes(test_photos.read(int(i)))
    (root / "unsorted.jpg").write_bytes(test_photos.read(0))
    return root


@pytest.fixture(scope="module")
def vgg_model(shop, tmp_path_factory):
    out = tmp_path_factory.mktemp("vgg") / "vgg16.keras"
    card = train_vgg16(out, shop, weights=None, input_size=32, epochs=1, batch_size=8)
    assert card["training"]["images"] == 12  # the unsorted photo has no label to learn from
    assert card["class_names"] == sorted(FOLDERS)  # the categories are the shop's folders
    return out


def test_vgg16_catalog_trains_converts_indexes_and_searches(vgg_model, shop, tmp_path):
    model = LiteRTModel(vgg_model.with_suffix(".tflite"))
    assert model.input_shape == (32, 32, 3) and model.embedding_dim == 512
    store = Hdf5Store(tmp_path / "shop")
    build(store, model, FolderSource(shop), "shop", bits=64)
    catalog = Catalog("shop", model, store, store.snapshot(), tmp_path)
    items = catalog.snapshot.items(catalog.snapshot.ids())
    assert len(catalog) == 13 and not catalog.stores_images
    labels = dict(zip(items.paths, items.labels.tolist()))
    assert labels["unsorted.jpg"] == -1
    assert {labels[f"{f}/0.jpg"] for f in FOLDERS} == {sorted(FOLDERS).index(f) for f in FOLDERS}
    query = (shop / "Hat" / "2.jpg").read_bytes()
    result = catalog.search(query, k=13, mode="direct")
    top = result.hits[0]
    assert top.path == catalog.item(top.id).paths[0] == "Hat/2.jpg" and top.similarity > 0.999
    assert catalog.item_file(top.id).read_bytes() == query


def test_vgg16_training_without_data_is_a_clear_cli_error(capsys, tmp_path):
    from app.cli import main

    assert main(["train", "--backbone", "vgg16", "--out", str(tmp_path / "x.keras")]) == 2
    err = capsys.readouterr().err
    assert "--data DIR" in err and "Traceback" not in err
