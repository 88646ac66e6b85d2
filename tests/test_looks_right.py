"""The looks-right measure: colours of the garment and the room, results against random same-category photos."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.evaluation.looks_right import ColourCache, catalog_looks_right, category_ids, colours, looks_right
from app.photo_dataset import CLASS_NAMES


def test_colours_are_the_centre_and_the_border_of_a_64px_resize():
    img = np.zeros((256, 320, 3), np.uint8)
    img[:] = (0, 0, 200)                                  # the room: blue
    img[80:176, 100:220] = (220, 30, 30)                  # the garment: red, in the middle
    garment, room = colours(Image.fromarray(img))
    np.testing.assert_allclose(garment, (220, 30, 30), atol=1)
    np.testing.assert_allclose(room, (0, 0, 200), atol=1)


@pytest.fixture(scope="module")
def photo_colours(test_photos):
    return np.stack([colours(test_photos.read(i)) for i in range(len(test_photos))])


def ratios(photo_colours, labels, pick, seed=0):
    """looks_right with query i's results chosen by ``pick(i, candidates)`` among the other photos of its category."""
    ids = {c: np.flatnonzero(labels == c) for c in range(len(CLASS_NAMES))}
    queries = np.arange(0, len(labels), 3)
    results = [pick(q, ids[labels[q]][ids[labels[q]] != q])[:20] for q in queries]
    return looks_right(photo_colours[queries], results, labels[queries], labels[queries], ids,
                       lambda i: photo_colours[i], CLASS_NAMES, 20, seed)


def test_results_of_the_same_garment_colour_score_low_and_random_ones_near_one(photo_colours, test_photos):
    labels = test_photos.labels.astype(int)

    def nearest(part):
        def pick(q, pool):
            return pool[np.argsort(np.linalg.norm(photo_colours[pool, part] - photo_colours[q, part], axis=1))]
        return pick

    by_garment = ratios(photo_colours, labels, nearest(0))
    by_room = ratios(photo_colours, labels, nearest(1))
    rng = np.random.default_rng(7)
    at_random = ratios(photo_colours, labels, lambda q, pool: rng.permutation(pool))
    assert by_garment["garment_colour_ratio"] < 0.6 < by_garment["background_ratio"]
    assert by_room["background_ratio"] < 0.6 < by_room["garment_colour_ratio"]
    assert 0.85 < at_random["garment_colour_ratio"] < 1.15 and 0.85 < at_random["background_ratio"] < 1.15
    assert sum(row["queries"] for row in by_garment["per_category"].values()) == by_garment["queries"] == 124
    assert ratios(photo_colours, labels, nearest(0)) == by_garment  # a fixed seed: the same random photos


def test_a_served_catalog_is_measured_through_its_search_and_item_files(catalogs, test_photos):
    catalog = catalogs["photos"]
    rows = np.linspace(0, len(test_photos) - 1, 12).astype(int)
    files = [test_photos.read(i) for i in rows]
    report = catalog_looks_right(catalog, files, test_photos.labels[rows], k=20, seed=3)
    # The same figure by hand for these queries: routed results' files against the same random draws.
    rng = np.random.default_rng(3)
    item = ColourCache(lambda i: catalog.item_file(i).read_bytes())
    pools = category_ids(catalog)
    near, chance = np.zeros(2), np.zeros(2)
    for data in files:
        result = catalog.search(data, k=20, mode="routed")
        q = colours(data)
        drawn = rng.choice(pools[result.searched[0]], size=20, replace=False)
        near += np.mean([np.linalg.norm(item(int(i)) - q, axis=1) for i in result.ids], axis=0)
        chance += np.mean([np.linalg.norm(item(int(i)) - q, axis=1) for i in drawn], axis=0)
    assert report["garment_colour_ratio"] == pytest.approx(near[0] / chance[0], abs=1e-4)
    assert report["background_ratio"] == pytest.approx(near[1] / chance[1], abs=1e-4)
    assert report["queries"] == 12 and set(report["per_category"]) == set(catalog.class_names)
