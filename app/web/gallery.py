"""Gallery images by item id, with caching headers: they only change when the index is rebuilt."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request, send_from_directory
from werkzeug.exceptions import NotFound

from .service import service

bp = Blueprint("gallery", __name__)


@bp.get("/images/<int:item_id>")
def image(item_id: int) -> Response:
    """PNG of a stored Fashion-MNIST item, or the file of a folder gallery item."""
    svc = service()
    index = svc.searcher.index
    if not 0 <= item_id < len(index):
        raise NotFound(f"there is no catalog item {item_id}")
    max_age = current_app.config["IMAGE_MAX_AGE"]
    if svc.stores_images:
        png, etag = svc.gallery_png(item_id)
        response = current_app.response_class(png, mimetype="image/png")
        response.set_etag(etag)
        response.make_conditional(request)  # If-None-Match -> 304
    else:  # conditional already; its safe_join refuses paths that leave the gallery root
        response = send_from_directory(index.root, index.paths[item_id], max_age=max_age)
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    return response
