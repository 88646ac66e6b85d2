"""HTML pages: the upload form, results with an address, and catalog items with more like them.

An upload is a plain form post that answers 303 with its results' address (``/results/<id>``),
which reloads, can be shared and re-searches in another category or mode without a new
upload; with results URLs off (FASHION16_RESULTS=off) the post shows the results itself.
static/upload.js and static/crop.js only add downscaling, progress, a crop box, drop and paste.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from ..catalog import Catalog
from ..imaging.display import data_url, is_small, thumbnail_data_url
from ..saved_searches import ID_PATTERN
from ..search import DEFAULT_K, SearchResult
from . import wording
from .requests import field, parse_box, parse_catalog, parse_category, parse_mode, upload_limit_mb
from .searching import item_url, load_saved, more_like, results_url, save, search_upload, to_json
from .service import catalogs, service

bp = Blueprint("pages", __name__)
bp.add_app_template_filter(wording.percent, "percent")
bp.add_app_template_filter(wording.match, "match")
bp.add_app_template_filter(wording.sentence, "sentence")


def render_form(error: str | None = None, mode: str | None = None, catalog: str | None = None) -> str:
    """The upload form (of one catalog), with an error message when re-shown after a bad upload."""
    served = catalogs()
    chosen = served[catalog] if catalog in served else served[served.default]
    shops = [c for c in served.values() if not c.demo]
    demos = [c for c in served.values() if c.demo and c is not chosen]
    return render_template("index.html", error=error, k=DEFAULT_K, max_mb=upload_limit_mb(), catalog=chosen,
                           shops=shops, demos=demos, modes=wording.modes(chosen), mode=mode or chosen.default_mode,
                           saving=service().saved is not None)


def render_results(catalog: Catalog, found: SearchResult, query: dict, mode: str, search_id: str | None = None,
                   category: str | None = None, first_timings: dict | None = None) -> str:
    """Results of one search; ``catalog`` is the very version the search used (no second lookup).

    ``first_timings``: a saved search's decode and model times, shown beside this search's own.
    """
    result = to_json(catalog, found)
    if first_timings:
        result["timings_ms"] = {**{s: first_timings[s] for s in ("decode", "preprocess", "forward")
                                   if s in first_timings}, **result["timings_ms"]}
    likely, others, everything = wording.chips(catalog, found)
    if search_id:
        links = {"chip_href": lambda name: results_url(search_id, catalog, category=name),
                 "all_href": results_url(search_id, catalog, mode="direct"),
                 "mode_href": lambda m: results_url(search_id, catalog, mode=m),
                 "share_url": results_url(search_id, catalog, mode, category, external=True)}
    else:
        links = {"chip_href": lambda name: None}
    return render_template("results.html", result=result, query=query, mode=mode, catalog=catalog,
                           search_id=search_id, category=category, modes=wording.modes(catalog),
                           likely=likely, others=others, everything=everything, **links,
                           pixelated=catalog.stores_images and is_small(catalog.model.input_shape))


@bp.app_context_processor
def saved_hours() -> dict:
    """How long results addresses (and the thumbnails behind them) are kept, for the pages that say so."""
    hours = current_app.config["SETTINGS"].results_ttl_hours
    return {"saved_hours": f"{hours:g}" if service().saved is not None else None}


@bp.get("/")
def index() -> str:
    return render_form(catalog=field("catalog"))


@bp.post("/search")
def search() -> Response | str:
    # kept for re-showing the form, as filled in, if the upload is refused
    g.mode, g.catalog = field("mode"), field("catalog")
    catalog = parse_catalog(g.catalog)
    mode = parse_mode(g.mode, catalog)
    category = parse_category(field("category"), catalog)
    searched = search_upload(catalog, DEFAULT_K, mode, category, parse_box(field("box")))
    search_id = save(catalog, searched)
    if search_id is not None:
        return redirect(results_url(search_id, catalog, mode, category[0] if category else None), 303)
    query = {"src": thumbnail_data_url(searched.picture), "alt": "Your photo",
             "pixelated": is_small(searched.picture.size)}
    return render_results(catalog, searched.result, query, mode)


@bp.get("/results/<search_id>")
def results(search_id: str) -> str:
    """A saved search, searched again now: in the category or mode the address names, at the catalog's version."""
    saved, catalog = load_saved(search_id)
    mode = parse_mode(field("mode"), catalog)
    category = parse_category(field("category"), catalog)
    found = catalog.rank(saved.probabilities, saved.embedding, DEFAULT_K, mode, category)
    query = {"src": data_url(saved.thumbnail, saved.thumbnail_type), "alt": "Your photo",
             "pixelated": saved.thumbnail_type == "image/png" and catalog.stores_images,
             "seen": data_url(saved.seen, "image/png") if saved.seen else None, "box": saved.box}
    return render_results(catalog, found, query, mode, search_id, category[0] if category else None,
                          saved.timings_ms)


@bp.get("/item/<catalog>/<int:item_id>")
def item(catalog: str, item_id: int) -> str:
    """One catalog item: its picture, category and id, and more like it below (the item itself left out)."""
    found = parse_catalog(catalog)
    mode = parse_mode(field("mode"), found)
    category = parse_category(field("category"), found)
    similar = more_like(found, item_id, DEFAULT_K, mode, category)
    stored = found.item(item_id)
    item_category = found.class_names[int(stored.categories[0])]
    likely, others, everything = wording.item_chips(found, item_category, similar)
    back = field("from")
    back = back if back and ID_PATTERN.fullmatch(back) else None

    def chip_href(name: str) -> str:
        chosen = None if name == item_category else name
        return url_for("pages.item", catalog=found.name, item_id=item_id, category=chosen, **{"from": back})

    return render_template(
        "item.html", catalog=found, item_id=item_id, mode=mode, item_category=item_category,
        picture=item_url(found, item_id, stored.hashes[0]), result=to_json(found, similar), likely=likely,
        others=others, everything=everything, chip_href=chip_href, back=back,
        all_href=url_for("pages.item", catalog=found.name, item_id=item_id, mode="direct", **{"from": back}),
        pixelated=found.stores_images and is_small(found.model.input_shape))
