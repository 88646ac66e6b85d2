"""Running a search for a request, shared by the pages and the API: upload or catalog item in, JSON out."""
from __future__ import annotations

import time

from flask import current_app, url_for
from PIL import Image
from werkzeug.exceptions import NotFound

from ..catalog import Catalog
from ..schema import ImageUrl, result_json
from ..search import Hit, SearchResult
from .requests import read_upload


def image_urls(catalog: Catalog) -> ImageUrl:
    """Result image URLs, versioned by each picture's content hash (so they can be cached for good)."""
    prefix = url_for("images.item", catalog=catalog.name, item_id=0)[:-1]  # one URL build per request, not 20
    return lambda hit: f"{prefix}{hit.id}?v={hit.hash}"


def item_url(catalog: Catalog, item_id: int, content_hash: str) -> str:
    return url_for("images.item", catalog=catalog.name, item_id=item_id, v=content_hash)


def to_json(catalog: Catalog, result: SearchResult) -> dict:
    return result_json(catalog, result, image_url=image_urls(catalog))


def search_upload(catalog: Catalog, k: int, mode: str) -> tuple[dict, Image.Image]:
    """Decode the upload once (the pages also show it), search with it; decoding counts in the timings."""
    data = read_upload()
    started = time.perf_counter()
    image = catalog.model.decode(data, current_app.config["MAX_PIXELS"])
    decode_ms = round(1000 * (time.perf_counter() - started), 3)
    payload = to_json(catalog, catalog.search(image, k=k, mode=mode))
    timings = payload["timings_ms"]
    timings["decode"] = decode_ms
    timings["total"] = round(timings["total"] + decode_ms, 3)
    return payload, image


def more_like(catalog: Catalog, item_id: int, k: int, mode: str) -> dict:
    """Items like a catalog item, the item left out ("more like this"); NotFound for unknown items."""
    try:
        return to_json(catalog, catalog.more_like(item_id, k=k, mode=mode))
    except KeyError:
        raise NotFound(f"there is no item {item_id} in the {catalog.name} catalog") from None


__all__ = ["Hit", "image_urls", "item_url", "more_like", "search_upload", "to_json"]
