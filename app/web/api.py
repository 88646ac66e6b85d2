"""The JSON API: search by upload and a health check (documented in docs/openapi.yaml)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..search import MAX_K, MODES
from .queries import parse_k, parse_mode, search_upload
from .service import service

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/search")
def search() -> Response:
    k, mode = parse_k(request.values.get("k")), parse_mode(request.values.get("mode"))
    result, _ = search_upload(k, mode)
    return jsonify(result)


@bp.get("/health")
def health() -> Response:
    """Liveness and identity: which model and index this process serves (no filesystem paths)."""
    svc = service()
    summary = svc.index_info
    return jsonify({
        "status": "ok",
        "model": {"sha256": svc.searcher.embedder.sha256, "file": svc.model_path.name},
        "index": {key: summary[key] for key in ("items", "bits", "embedding_dim", "source", "created")}
                 | {"categories": len(summary["categories"])},
        "engine": svc.searcher.engine,
        "modes": list(MODES),
        "max_k": MAX_K,
    })
