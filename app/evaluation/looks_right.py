"""Do the results look like the garment, or like the room? A colour measure of the top results.

Each photo gets two colours from a 64x64 resize (stretched): the **garment colour**, the mean
RGB of the central 24x24 pixels (where phone photos put the garment), and the **background
colour**, the mean RGB of the outer 4-pixel ring. For each query, the mean RGB (Euclidean)
distance from its colours to those of its routed top-k results is compared with the distance to
k random catalog photos of the results' category (a fixed seed): ratio = distance to the results
/ distance to random photos, summed over queries. 1.0 is no better than chance; a garment ratio
well below 1 means results share the garment's colour, a background ratio near 1 means the room
does not decide.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

SIDE = 64
BORDER = 4
CENTRE = 24


def colours(data: bytes | Image.Image) -> np.ndarray:
    """(2, 3) float: [garment (centre) colour, background (border) colour] of a photo, RGB 0-255."""
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    small = np.asarray(img.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX), np.float64)
    lo = (SIDE - CENTRE) // 2
    ring = np.ones((SIDE, SIDE), bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    return np.stack([small[lo:lo + CENTRE, lo:lo + CENTRE].reshape(-1, 3).mean(0), small[ring].mean(0)])


class ColourCache:
    """Colours of catalog items by id, each file read once."""

    def __init__(self, read: Callable[[int], bytes]):
        self.read, self.cache = read, {}

    def __call__(self, item_id: int) -> np.ndarray:
        if item_id not in self.cache:
            self.cache[item_id] = colours(self.read(item_id))
        return self.cache[item_id]


def looks_right(query_colours: Sequence[np.ndarray], result_ids: Sequence[Sequence[int]],
                result_categories: Sequence[int], labels: Sequence[int], ids_by_category: Mapping[int, np.ndarray],
                item_colours: Callable[[int], np.ndarray], class_names: Sequence[str], k: int = 20,
                seed: int = 0) -> dict:
    """Garment and background colour ratios, overall and per query category (the query's true label).

    ``result_ids[i]`` are query i's top results, ``result_categories[i]`` the category they were
    searched in (routed: the predicted one); its random comparison photos are drawn from that
    category's ids with ``seed``.
    """
    rng = np.random.default_rng(seed)
    near = np.zeros((len(result_ids), 2))
    chance = np.zeros((len(result_ids), 2))
    counted = np.zeros(len(result_ids), bool)
    for i, (q, ids, category) in enumerate(zip(query_colours, result_ids, result_categories)):
        pool = np.asarray(ids_by_category[int(category)])
        if not len(ids) or not len(pool):
            continue
        drawn = rng.choice(pool, size=min(k, len(pool)), replace=False)
        near[i] = np.mean([np.linalg.norm(item_colours(int(r)) - q, axis=1) for r in ids[:k]], axis=0)
        chance[i] = np.mean([np.linalg.norm(item_colours(int(r)) - q, axis=1) for r in drawn], axis=0)
        counted[i] = True

    def ratios(rows: np.ndarray) -> dict:
        rows = rows & counted
        if not rows.any():
            return {"garment_colour_ratio": None, "background_ratio": None, "queries": 0}
        r = near[rows].sum(0) / chance[rows].sum(0)
        return {"garment_colour_ratio": round(float(r[0]), 4), "background_ratio": round(float(r[1]), 4),
                "queries": int(rows.sum())}

    labels = np.asarray(labels)
    return {**ratios(np.ones(len(result_ids), bool)), "k": k, "seed": seed,
            "per_category": {name: ratios(labels == c) for c, name in enumerate(class_names)}}


def category_ids(catalog) -> dict[int, np.ndarray]:
    """The ids filed under each category of a catalog, from the snapshot it searches."""
    return {c: catalog.snapshot.ids(c) for c in range(len(catalog.class_names))}


def catalog_looks_right(catalog, queries: Sequence[bytes], labels: np.ndarray, k: int = 20, seed: int = 0) -> dict:
    """The measure on a served catalog: one routed ``catalog.search`` per query, items read by id."""
    found = [catalog.search(q, k=k, mode="routed") for q in queries]
    return looks_right([colours(q) for q in queries], [r.ids for r in found], [r.searched[0] for r in found],
                       labels, category_ids(catalog), ColourCache(lambda i: catalog.item_file(i).read_bytes()),
                       catalog.class_names, k, seed)
