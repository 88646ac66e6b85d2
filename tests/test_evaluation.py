"""The evaluations: held-out queries through real ``Catalog.search`` calls, reports that add up."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.evaluation import fashion_mnist, photos
from app.evaluation.metrics import spread
from app.evaluation.photos import phone_like
from app.search import MODES


def test_phone_like_is_a_different_jpeg_of_the_same_photo(test_photos):
    original = Image.open(io.BytesIO(test_photos.read(0))).convert("RGB")
    a = phone_like(original, np.random.default_rng(1))
    b = phone_like(original, np.random.default_rng(1))
    c = phone_like(original, np.random.default_rng(2))
    assert a == b and a != c  # seeded
    retaken = Image.open(io.BytesIO(a))
    assert retaken.format == "JPEG" and 200 <= max(retaken.size) <= 800
    small = np.asarray(retaken.convert("RGB").resize((32, 32)), np.float32)
    assert np.abs(small - np.asarray(original.resize((32, 32)), np.float32)).mean() > 3  # really changed


@pytest.fixture(scope="module")
def photo_report(catalogs):
    return photos.evaluate(catalogs["photos"], k=20, limit=30, seed=0)


def test_photo_report_has_every_figure_and_they_add_up(photo_report, catalogs, test_photos):
    r = photo_report
    catalog = catalogs["photos"]
    assert r["queries"] == 30 and r["gallery_items"] == len(catalog) == 400 and r["item_queries"] == 30
    for key in ("classifier_accuracy", "lsh_recall_at_20", "item_recall_at_1", "item_recall_at_20",
                *(f"precision_at_20_{m}" for m in MODES), *(f"mean_query_ms_{m}" for m in MODES)):
        assert key in r, key
    # Accuracy recomputed from the model: the report measures what the model does.
    chosen = spread(test_photos.labels, 30, 0)  # --limit 30: three of each category, not the first 30
    assert np.bincount(test_photos.labels[chosen], minlength=10).tolist() == [3] * 10
    inputs = np.stack([catalog.model.prepare(catalog.model.decode(test_photos.read(int(i)), 40_000_000))
                       for i in chosen])
    predicted = catalog.model(inputs)[0].argmax(1)
    assert r["classifier_accuracy"] == pytest.approx(np.mean(predicted == test_photos.labels[chosen]))
    # Every catalog item is filed under its known label, so routed results all share the predicted
    # category: routed precision@20 is exactly the classifier's accuracy.
    assert r["precision_at_20_routed"] == pytest.approx(r["classifier_accuracy"])
    assert r["item_recall_at_20"] >= r["item_recall_at_1"] >= 0.5  # retaken catalog photos find themselves
    assert r["item_recall_mode"] == "direct" and r["item_recall_by_mode"]["direct"]["at_20"] == r["item_recall_at_20"]
    assert r["item_recall_by_mode"]["direct"]["at_20"] >= r["item_recall_by_mode"]["routed"]["at_20"]
    assert sum(row["queries"] for row in r["per_category"]) == 30
    assert sum(row["catalog_items"] for row in r["per_category"]) == 400
    assert r["mean_query_ms_routed"] > 0 and r["latency"]["routed"]["samples"] == 30
    looks = r["looks_right"]
    assert 0 < looks["garment_colour_ratio"] < 2 and 0 < looks["background_ratio"] < 2 and looks["queries"] == 30
    assert sum(row["queries"] for row in looks["per_category"].values()) == 30 and looks["k"] == 20
    assert "Dress" in photos.summary(r) and "item recall@1 / @20 soft" in photos.summary(r)
    assert "looks right" in photos.summary(r)


def test_fashion_mnist_report_is_the_papers_evaluation(catalogs, fmnist):
    report = fashion_mnist.evaluate(catalogs["fashion-mnist"], fmnist, k=20, limit=40)
    chosen = spread(fmnist.y_test, 40)
    assert np.bincount(fmnist.y_test[chosen], minlength=10).tolist() == [4] * 10
    probs = catalogs["fashion-mnist"].model(np.stack([x[..., None] for x in fmnist.x_test[chosen]]).astype(np.float32))[0]
    assert report["classifier_accuracy"] == pytest.approx(np.mean(probs.argmax(1) == fmnist.y_test[chosen]))
    assert report["precision_at_20_routed"] == pytest.approx(report["classifier_accuracy"])
    assert report["catalog_items"] == 2000 and report["runtime"] == "litert" and report["paper"]["gallery_images"]
    assert report["lsh_recall_at_20"] == pytest.approx(1.0)  # 256 re-ranked candidates cover 200-item libraries
    assert "paper" in fashion_mnist.summary(report)
