"""The web layer: HTML pages, the JSON API and catalog images over the catalogs one process serves."""
from __future__ import annotations

from flask import Flask, Response

from ..settings import Settings
from . import api, errors, images, pages
from .service import EXTENSION, load_service

# Everything is served from this origin (no CDN); previews of chosen files are blob: URLs
# and the query image on the results page is a data: URL.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                           "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Load the catalogs (or refuse to start), then register routes and error handlers."""
    app.extensions[EXTENSION] = load_service(app, settings)
    for blueprint in (pages.bp, api.bp, images.bp):
        app.register_blueprint(blueprint)
    errors.register(app)
    app.after_request(security_headers)
