"""Catalog images by catalog and item id, with caching headers: they change only when a store is rebuilt."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request, send_from_directory
from werkzeug.exceptions import NotFound

from .service import catalogs, service

bp = Blueprint("images", __name__)


@bp.get("/images/<catalog>/<int:item_id>")
def item(catalog: str, item_id: int) -> Response:
    """PNG of a store-held item (Fashion-MNIST), or the photo file of a photo catalog's item."""
    found = catalogs().get(catalog)
    if found is None:
        raise NotFound(f"there is no catalog {catalog!r}")
    max_age = current_app.config["IMAGE_MAX_AGE"]
    try:
        if found.stores_images:
            png, etag = service().item_png(found.name, item_id)
            response = current_app.response_class(png, mimetype="image/png")
            response.set_etag(etag)
            response.make_conditional(request)  # If-None-Match -> 304
        else:  # conditional already; its safe_join refuses paths that leave the catalog folder
            path = found.item_file(item_id)
            response = send_from_directory(found.root, path.relative_to(found.root).as_posix(), max_age=max_age)
    except KeyError:
        raise NotFound(f"there is no item {item_id} in the {found.name} catalog") from None
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    return response
