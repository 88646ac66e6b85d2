"""The admin API: catalog owners add and remove items while the app serves. Off unless FASHION16_ADMIN_TOKEN is set.

- ``POST /api/catalogs/<name>/items``: multipart ``image`` (one or more photos), optional ``category``.
- ``DELETE /api/catalogs/<name>/items/<id>``.
Requests carry ``Authorization: Bearer <token>``, compared in constant time; a missing token
gets 401, a wrong one 403, both in the API's JSON shape. Every change is logged. No page
links here, and with no token configured the routes do not exist (404).
"""
from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

from ..catalog_admin import add_photos, remove_item
from ..stores import StoreError
from .requests import UPLOAD_FIELD, field, parse_catalog
from .searching import item_url
from .service import service

bp = Blueprint("admin", __name__, url_prefix="/api/catalogs")


@bp.before_request
def authorise() -> None:
    token = current_app.config["SETTINGS"].admin_token
    if token is None:
        raise NotFound("there is no such page")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        raise Unauthorized("this needs the admin token: send the header 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given[len("Bearer "):].strip().encode(), token.encode()):
        current_app.logger.warning("admin: refused a wrong token from %s", request.remote_addr)
        raise Forbidden("the admin token is not right")


@bp.after_request
def ask_for_bearer(response: Response) -> Response:
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fashion16-admin"'
    return response


@bp.post("/<name>/items")
def add(name: str) -> tuple[Response, int]:
    catalog = parse_catalog(name)
    photos = [f.read() for f in request.files.getlist(UPLOAD_FIELD) if f.filename]
    if not photos:
        raise BadRequest(f"no photo was uploaded: send one or more in the multipart field {UPLOAD_FIELD!r}")
    try:
        version, added = add_photos(catalog, photos, field("category"), current_app.config["MAX_PIXELS"])
    except StoreError as exc:
        raise Conflict(str(exc)) from None
    except ValueError as exc:
        if hasattr(exc, "status"):  # ImageRejected: the photo's own 4xx
            raise
        raise BadRequest(str(exc)) from None
    service().refresh()  # this worker serves the new version at once
    current_app.logger.info("admin: catalog %s version %d: added %s", catalog.name, version,
                            [a.id for a in added if not a.existing])
    items = [{"id": a.id, "category": catalog.class_names[a.category], "path": a.path, "existing": a.existing,
              "image_url": item_url(catalog, a.id, a.hash, external=True)} for a in added]
    return jsonify(catalog=catalog.name, catalog_version=version, items=items), 201


@bp.delete("/<name>/items/<int:item_id>")
def remove(name: str, item_id: int) -> Response:
    catalog = parse_catalog(name)
    try:
        version = remove_item(catalog, item_id)
    except KeyError:
        raise NotFound(f"there is no item {item_id} in the {catalog.name} catalog") from None
    except StoreError as exc:
        raise Conflict(str(exc)) from None
    service().refresh()
    current_app.logger.info("admin: catalog %s version %d: removed %d", catalog.name, version, item_id)
    return jsonify(catalog=catalog.name, catalog_version=version, removed=item_id)
