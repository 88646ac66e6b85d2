"""HTML pages: the upload form, results of an upload, and "more like this" from a catalog item.

Everything works as a plain form post; static/app.js only adds drag-and-drop and a preview.
"""
from __future__ import annotations

from flask import Blueprint, g, render_template

from ..imaging.display import is_small, thumbnail_data_url
from ..search import DEFAULT_K, DEFAULT_MODE, MODES
from .requests import field, parse_catalog, parse_mode, upload_limit_mb
from ..catalog import Catalog
from .searching import item_url, more_like, search_upload
from .service import catalogs

bp = Blueprint("pages", __name__)

MODE_HELP = dict(zip(MODES, (
    "Only the predicted category: fastest (the paper's method).",  # routed
    "The whole catalog, whatever the category.",  # direct
    "The few likeliest categories when the classifier is unsure.",  # soft
)))


@bp.app_template_filter("percent")
def percent(probability: float) -> str:
    return f"{100 * probability:.1f}%"


@bp.app_template_filter("sentence")
def sentence(message: str) -> str:
    """Error messages are written as clauses ("the file is empty"); show them as sentences."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message[-1] in ".!?" else ".")


def render_form(error: str | None = None, mode: str = DEFAULT_MODE, catalog: str | None = None) -> str:
    """The upload form, with an error message when re-shown after a bad upload."""
    served = catalogs()
    return render_template("index.html", modes=MODE_HELP, mode=mode, error=error, k=DEFAULT_K,
                           max_mb=upload_limit_mb(), catalogs=list(served.values()),
                           catalog=catalog if catalog in served else served.default)


def render_results(catalog: Catalog, result: dict, query: dict, mode: str) -> str:
    """Results of one search; ``catalog`` is the very version the search used (no second lookup)."""
    return render_template("results.html", result=result, query=query, mode=mode, modes=MODE_HELP,
                           catalog=catalog, pixelated=catalog.stores_images and is_small(catalog.model.input_shape))


@bp.get("/")
def index() -> str:
    return render_form(catalog=field("catalog"))


@bp.post("/search")
def search() -> str:
    # kept for re-showing the form, as filled in, if the upload is refused
    g.mode, g.catalog = parse_mode(field("mode")), field("catalog")
    catalog = parse_catalog(g.catalog)
    result, image = search_upload(catalog, DEFAULT_K, g.mode)
    query = {"src": thumbnail_data_url(image), "alt": "Your uploaded image", "pixelated": is_small(image.size)}
    return render_results(catalog, result, query, g.mode)


@bp.get("/item/<catalog>/<int:item_id>")
def item(catalog: str, item_id: int) -> str:
    mode = parse_mode(field("mode"))
    found = parse_catalog(catalog)
    result = more_like(found, item_id, DEFAULT_K, mode)
    query = {"src": item_url(found, item_id, found.item(item_id).hashes[0]), "alt": f"Catalog item {item_id}",
             "pixelated": found.stores_images, "item_id": item_id}
    return render_results(found, result, query, mode)
