"""The JSON API: search by upload and a health check (documented in docs/openapi.yaml)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..schema import health_json
from .requests import field, parse_catalog, parse_k, parse_mode
from .searching import search_upload
from .service import catalogs

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/search")
def search() -> Response:
    catalog = parse_catalog(field("catalog"))
    k, mode = parse_k(field("k")), parse_mode(field("mode"))
    result, _ = search_upload(catalog, k, mode)
    return jsonify(result)


@bp.get("/health")
def health() -> Response:
    """Liveness and identity: which catalogs and models this process serves (no filesystem paths)."""
    return jsonify(health_json(catalogs()))
