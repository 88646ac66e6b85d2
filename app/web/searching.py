"""Running a search for a request, shared by the pages and the API: upload, saved search or catalog item in.

An upload is decoded once (the pages also show it), cropped to its box, searched, and, when
results URLs are on, saved (app/saved_searches.py) so that its address can search again
with the kept model outputs: in another category or mode, after a reload, on another
worker, against the catalog's current version.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app, url_for
from PIL import Image
from werkzeug.exceptions import Gone, NotFound

from ..catalog import Catalog
from ..imaging.crop import Box
from ..imaging.display import model_view_png, thumbnail
from ..saved_searches import Expired, SavedSearch
from ..schema import ImageUrl, result_json
from ..search import Hit, SearchResult
from .requests import read_upload
from .service import catalogs, service

GONE_HINT = "search with your photo again"


def image_urls(catalog: Catalog, external: bool = False) -> ImageUrl:
    """Result image URLs, versioned by each picture's content hash (so they can be cached for good).

    ``external``: absolute URLs (the API's), from the Host the client used: nginx passes it on,
    and gunicorn takes the scheme from nginx's X-Forwarded-Proto (it trusts its unix socket).
    """
    prefix = url_for("images.item", catalog=catalog.name, item_id=0, _external=external)[:-1]  # one build, not 20
    return lambda hit: f"{prefix}{hit.id}?v={hit.hash}"


def item_url(catalog: Catalog, item_id: int, content_hash: str, external: bool = False) -> str:
    return url_for("images.item", catalog=catalog.name, item_id=item_id, v=content_hash, _external=external)


def to_json(catalog: Catalog, result: SearchResult, external: bool = False) -> dict:
    return result_json(catalog, result, image_url=image_urls(catalog, external))


@dataclass
class Searched:
    """One upload, searched: the result, the picture searched (cropped) and, when saved, its id."""

    result: SearchResult
    picture: Image.Image
    box: Box | None
    saved_id: str | None = None


def search_upload(catalog: Catalog, k: int, mode: str, categories: list[str] | None, box: Box | None) -> Searched:
    """Decode the upload once, crop it, search with it; decoding counts in the timings."""
    data = read_upload()
    started = time.perf_counter()
    picture = catalog.model.decode(data, current_app.config["MAX_PIXELS"], zoom=box.zoom if box else 1.0)
    if box is not None:
        picture = box.crop(picture)
    decode_ms = round(1000 * (time.perf_counter() - started), 3)
    result = catalog.search(picture, k=k, mode=mode, categories=categories)
    timings = result.timings_ms
    timings["decode"] = decode_ms
    timings["total"] = round(timings["total"] + decode_ms, 3)
    return Searched(result, picture, box)


def save(catalog: Catalog, searched: Searched) -> str | None:
    """Keep what the search's address needs to search again; None when results URLs are off."""
    saved = service().saved
    if saved is None:
        return None
    thumb, thumb_type = thumbnail(searched.picture)
    grey = catalog.model.input_shape[2] == 1  # the paper's model: show what it made of a photo
    seen = model_view_png(catalog.model.prepare(searched.picture)) if grey else None
    result = searched.result
    searched.saved_id = saved.save(SavedSearch(
        catalog.name, catalog.model.sha256, result.probabilities, result.embedding, thumb, thumb_type, seen,
        str(searched.box) if searched.box else None, result.timings_ms))
    return searched.saved_id


def load_saved(search_id: str) -> tuple[SavedSearch, Catalog]:
    """A saved search and the catalog it searched, at that catalog's current version.

    404 for an unknown id; 410 when it expired, its catalog is no longer served, or the
    catalog's model changed (the kept outputs no longer fit it).
    """
    saved = service().saved
    if saved is None:
        raise NotFound("results addresses are turned off on this server; " + GONE_HINT)
    hours = f"{current_app.config['SETTINGS'].results_ttl_hours:g}"
    try:
        found = saved.get(search_id)
    except Expired:
        raise Gone(f"these results have expired: searches are kept for {hours} hours; {GONE_HINT}") from None
    except KeyError:
        raise NotFound(f"there are no such results: they may have expired (searches are kept for {hours} hours) "
                       f"or the address is incomplete; {GONE_HINT}") from None
    try:
        catalog = catalogs().resolve(found.catalog)
    except KeyError:
        raise Gone(f"the {found.catalog} catalog these results came from is no longer served; {GONE_HINT}") from None
    if catalog.model.sha256 != found.model_sha256:
        raise Gone(f"the {catalog.title} catalog now uses another model, which must see the photo itself; "
                   f"{GONE_HINT}")
    return found, catalog


def results_url(search_id: str, catalog: Catalog, mode: str | None = None, category: str | None = None,
                external: bool = False) -> str:
    """The results page of a saved search; the mode only when it is not the catalog's default."""
    return url_for("pages.results", search_id=search_id, category=category,
                   mode=mode if mode and mode != catalog.default_mode and not category else None,
                   _external=external)


def more_like(catalog: Catalog, item_id: int, k: int, mode: str, categories: list[str] | None = None) -> SearchResult:
    """Items like a catalog item, the item left out ("more like this"); NotFound for unknown items."""
    try:
        return catalog.more_like(item_id, k=k, mode=mode, categories=categories)
    except KeyError:
        raise NotFound(f"there is no item {item_id} in the {catalog.name} catalog") from None


__all__ = ["Hit", "Searched", "image_urls", "item_url", "load_saved", "more_like", "results_url", "save",
           "search_upload", "to_json"]
