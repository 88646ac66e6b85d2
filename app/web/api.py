"""The JSON API: search by upload, search a saved query again, health, and the API's own description.

Its OpenAPI document (app/web/openapi.py) is served at /api/openapi.json and as a page at
/api/docs; the tests validate real responses of every route against it.
"""
from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, render_template
from markupsafe import Markup, escape

from ..schema import health_json
from . import openapi
from .requests import field, parse_box, parse_catalog, parse_category, parse_flag, parse_k, parse_mode
from .searching import load_saved, results_url, save, search_upload, to_json
from .service import catalogs

bp = Blueprint("api", __name__, url_prefix="/api")
CODE_SPAN = re.compile(r"`([^`]+)`")


@bp.app_template_filter("code_spans")
def code_spans(text: str) -> Markup:
    """The document's `code` spans (Markdown, as OpenAPI descriptions are written) as <code>, the rest escaped."""
    return Markup(CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


def with_address(body: dict, search_id: str | None, catalog, mode: str, category: list[str] | None) -> dict:
    """A result with the id and the absolute address of its saved search (absent when results URLs are off)."""
    if search_id is not None:
        body["query_id"] = search_id
        body["results_url"] = results_url(search_id, catalog, mode, category[0] if category else None, external=True)
    return body


@bp.post("/search")
def search() -> Response:
    catalog = parse_catalog(field("catalog"))
    k, mode = parse_k(field("k")), parse_mode(field("mode"), catalog)
    category = parse_category(field("category"), catalog)
    searched = search_upload(catalog, k, mode, category, parse_box(field("box")))
    body = to_json(catalog, searched.result, external=True)
    body["box"] = str(searched.box) if searched.box else None
    kept = save(catalog, searched) if parse_flag(field("save"), "save") else None  # API clients ask for it
    return jsonify(with_address(body, kept, catalog, mode, category))


@bp.get("/queries/<query_id>")
def query(query_id: str) -> Response:
    """A saved search, searched again at its catalog's current version: in another category, mode or k."""
    saved, catalog = load_saved(query_id)
    k, mode = parse_k(field("k")), parse_mode(field("mode"), catalog)
    category = parse_category(field("category"), catalog)
    body = to_json(catalog, catalog.rank(saved.probabilities, saved.embedding, k, mode, category), external=True)
    body["box"] = saved.box
    return jsonify(with_address(body, query_id, catalog, mode, category))


@bp.get("/health")
def health() -> Response:
    """Liveness and identity: which catalogs and models this process serves (no filesystem paths)."""
    return jsonify(health_json(catalogs()))


@bp.get("/openapi.json")
def spec() -> Response:
    return jsonify(openapi.document())


@bp.get("/docs")
def docs() -> str:
    """The API's description as a page, rendered here from the same document (no CDN, no script)."""
    return render_template("api_docs.html", doc=openapi.document(), describe=openapi.describe)
