"""One error path for both front ends: JSON {"error": ...} under /api/, friendly pages elsewhere.

Client mistakes keep their 4xx status (an unusable upload carries its own, see
imaging.decode.ImageRejected); only real faults become 500, and those never show internals.
"""
from __future__ import annotations

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, RequestEntityTooLarge

from ..imaging.decode import ImageRejected
from ..server_errors import is_api, too_large_message
from ..server_errors import message as status_message
from .pages import render_form

FORM_ENDPOINT = "pages.search"
DRAIN_CHUNK = 64 * 1024


def describe(exc: HTTPException) -> str:
    """A short message for the client, in place of Werkzeug's longer defaults where it helps."""
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        if request.content_length is not None and limit is not None and request.content_length <= limit:
            return "the form has too many fields or parts; send one image and a few fields"
        return too_large_message(limit / 2**20 if limit else 0)
    if isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        return f"{request.method} is not allowed here" + (f"; use {allowed}" if allowed else "")
    if isinstance(exc, InternalServerError):
        return "something went wrong on our side; please try again"
    if not exc.description or exc.description == type(exc).description:  # Werkzeug's generic wording
        return status_message(exc.code or 500)
    return exc.description


def respond(status: int, message: str) -> Response:
    """JSON for API clients; for people, the form again (upload errors) or an error page."""
    if is_api(request.path):
        response = jsonify(error=message)
        response.status_code = status
        return response
    if request.endpoint == FORM_ENDPOINT:
        page = render_form(error=message, mode=g.get("mode"), catalog=g.get("catalog"))
        return make_response(page, status)
    return make_response(render_template("error.html", status=status, message=message), status)


def handle_http_error(exc: HTTPException) -> Response:
    response = respond(exc.code or 500, describe(exc))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def handle_rejected_image(exc: ImageRejected) -> Response:
    return respond(exc.status, str(exc))


def drain_unread_body(response: Response) -> Response:
    """Read what is left of a request body the app did not need, so the connection stays usable.

    A refused upload (wrong content type, too many fields, a failed check) leaves its body
    unread. gunicorn drains at most 64 KiB of it after the response and otherwise closes the
    socket, although the response said "keep-alive" (the client's next request on it then
    fails; and an app's own "Connection: close" is a hop-by-hop header that WSGI servers drop).
    Bodies within the upload limit are read here, before the response goes out; a body
    declared over the limit is not (that is the point of the limit): the gunicorn worker
    answers those, and chunked ones, with "Connection: close" (app/gunicorn_worker.py).
    """
    limit = request.max_content_length
    if request.content_length is not None and limit is not None and request.content_length > limit:
        return response
    try:
        stream = request.stream
        while stream.read(DRAIN_CHUNK):
            pass
    except (HTTPException, OSError):  # over the limit while chunked, or the client went away: nothing to keep
        pass
    return response


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(ImageRejected, handle_rejected_image)
    app.after_request(drain_unread_body)
