"""Running a search for a request, shared by the pages and the API: upload or catalog item in, JSON out."""
from __future__ import annotations

import time

import numpy as np
from flask import current_app, url_for
from PIL import Image
from werkzeug.exceptions import NotFound

from ..catalog import Catalog
from ..schema import result_json
from .requests import read_upload


def run_search(catalog: Catalog, query: Image.Image | np.ndarray, k: int, mode: str) -> dict:
    """Search one catalog and return the API's JSON shape, with URLs of the result images."""
    result = catalog.search(query, k=k, mode=mode)
    prefix = url_for("images.item", catalog=catalog.name, item_id=0)[:-1]  # one URL build per request, not 20
    return result_json(catalog, result, image_url=lambda item_id: f"{prefix}{item_id}")


def search_upload(catalog: Catalog, k: int, mode: str) -> tuple[dict, Image.Image]:
    """Decode the upload once (the pages also show it), search with it; decoding counts in the timings."""
    data = read_upload()
    started = time.perf_counter()
    image = catalog.model.decode(data, current_app.config["MAX_PIXELS"])
    decode_ms = round(1000 * (time.perf_counter() - started), 3)
    payload = run_search(catalog, image, k, mode)
    timings = payload["timings_ms"]
    timings["decode"] = decode_ms
    timings["total"] = round(timings["total"] + decode_ms, 3)
    return payload, image


def item_query(catalog: Catalog, item_id: int) -> Image.Image | np.ndarray:
    """A catalog item's own picture as a query ("more like this"); NotFound for unknown items."""
    try:
        return catalog.item_query(item_id)
    except (KeyError, FileNotFoundError):
        raise NotFound(f"there is no item {item_id} in the {catalog.name} catalog") from None
