"""One error path for both front ends: JSON {"error": ...} under /api/, friendly pages elsewhere.

Client mistakes keep their 4xx status (an unusable upload carries its own, see
preprocess.ImageRejected); only real faults become 500, and those never show internals.
"""
from __future__ import annotations

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, RequestEntityTooLarge

from ..preprocess import ImageRejected
from .pages import render_form
from .queries import DEFAULT_MODE, upload_limit_mb

API_PREFIX = "/api/"
FORM_ENDPOINT = "pages.search"


def describe(exc: HTTPException) -> str:
    """A short message for the client, in place of Werkzeug's longer defaults where it helps."""
    if isinstance(exc, RequestEntityTooLarge):
        return f"the upload is larger than the {upload_limit_mb()} MB limit; choose a smaller image"
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        return f"{request.method} is not allowed here" + (f"; use {allowed}" if allowed else "")
    if isinstance(exc, InternalServerError):
        return "something went wrong on our side; please try again"
    return exc.description or exc.name


def respond(status: int, message: str) -> Response:
    """JSON for API clients; for people, the form again (upload errors) or an error page."""
    if request.path.startswith(API_PREFIX):
        response = jsonify(error=message)
        response.status_code = status
        return response
    if request.endpoint == FORM_ENDPOINT:
        return make_response(render_form(error=message, mode=g.get("mode", DEFAULT_MODE)), status)
    return make_response(render_template("error.html", status=status, message=message), status)


def handle_http_error(exc: HTTPException) -> Response:
    response = respond(exc.code or 500, describe(exc))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def handle_rejected_image(exc: ImageRejected) -> Response:
    return respond(exc.status, str(exc))


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(ImageRejected, handle_rejected_image)
