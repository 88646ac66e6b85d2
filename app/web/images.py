"""Catalog images by catalog and item id.

``/images/<catalog>/<id>?v=<content hash>`` (what pages and the API link to) is cached for
good (``immutable``): an id never names another picture, and the hash names the content.
Without ``v`` the answer must be revalidated (``no-cache`` with an ETag). A photo file
changed on disk without being indexed again is never served under its old hash as immutable.
"""
from __future__ import annotations

import hashlib

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from ..sources import content_hash
from .service import catalogs, service

bp = Blueprint("images", __name__)
IMMUTABLE_MAX_AGE = 365 * 24 * 3600
MIMETYPES = {b"\xff\xd8": "image/jpeg", b"\x89P": "image/png", b"RI": "image/webp", b"GI": "image/gif"}


@bp.get("/images/<catalog>/<int:item_id>")
def item(catalog: str, item_id: int) -> Response:
    """PNG of a store-held item (Fashion-MNIST), or the photo file of a photo catalog's item."""
    found = catalogs().get(catalog)
    if found is None:
        raise NotFound(f"there is no catalog {catalog!r}")
    try:
        stored = found.item(item_id)
    except KeyError:
        raise NotFound(f"there is no item {item_id} in the {found.name} catalog") from None
    wanted = request.args.get("v")
    if wanted is not None and wanted != stored.hashes[0]:
        raise NotFound(f"item {item_id} of the {found.name} catalog has another picture now; reload the page")
    if found.stores_images:
        data, etag = service().item_png(found.name, stored.hashes[0], item_id)
        mimetype, fresh = "image/png", True
    else:
        try:
            data = found.item_file(item_id, stored.paths[0]).read_bytes()
        except OSError:
            raise NotFound(f"the photo of item {item_id} is missing from the {found.name} catalog's folder") from None
        etag = hashlib.sha256(data).hexdigest()[:32]
        mimetype = MIMETYPES.get(data[:2], "application/octet-stream")
        fresh = content_hash(data) == stored.hashes[0]
    response = current_app.response_class(data, mimetype=mimetype)
    response.set_etag(etag)
    response.cache_control.public = True
    if wanted is not None and fresh:
        response.cache_control.max_age = IMMUTABLE_MAX_AGE
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True
    return response.make_conditional(request)  # If-None-Match -> 304
