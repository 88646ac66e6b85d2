"""The web layer: HTML pages, the JSON API and catalog images over the catalogs one process serves."""
from __future__ import annotations

from flask import Flask, Response

from ..headers import SECURITY_HEADERS
from ..settings import Settings
from . import admin, api, errors, images, pages
from .requests import UploadRequest
from .service import EXTENSION, load_service


def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Load the catalogs (or refuse to start), then register routes and error handlers."""
    app.request_class = UploadRequest
    app.extensions[EXTENSION] = load_service(app, settings)
    for blueprint in (pages.bp, api.bp, images.bp, admin.bp):
        app.register_blueprint(blueprint)
    errors.register(app)
    app.after_request(security_headers)
