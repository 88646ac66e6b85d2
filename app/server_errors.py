"""Errors answered outside the Flask app, by nginx or gunicorn, in the app's shapes.

Under /api/ a client gets JSON ``{"error": message}``, elsewhere a short page in the site's
style; both carry the app's security headers (app/headers.py), as every answer of the app
does. The messages are worded like the app's own, never a server's internals.
"""
from __future__ import annotations

import html
import json
import re

API_PATH = re.compile(r"/api(/|\?|$)")

MESSAGES = {
    400: "the request is malformed; send a well-formed HTTP request",
    403: "this request is not allowed",
    404: "there is no such page",
    405: "this method is not allowed here",
    408: "the request took too long to arrive; please try again",
    414: "the address (URL) is too long",
    417: "the expectation in the request cannot be met",
    429: "too many searches from your address; please wait a moment and try again",
    431: "the request headers are too large",
    500: "something went wrong on our side; please try again",
    501: "this transfer coding is not supported",
    502: "the search service is not available right now; please try again in a moment",
    503: "the search service is busy; please try again in a moment",
    504: "the search took too long; please try again",
    505: "this HTTP version is not supported; use HTTP/1.1",
}


def message(status: int) -> str:
    return MESSAGES.get(status) or MESSAGES[500 if status >= 500 else 400]


def too_large_message(max_upload_mb: float) -> str:
    """The app's own wording for an upload over the limit (app/web/errors.py says the same)."""
    return f"the upload is larger than the {max_upload_mb:.3g} MB limit; choose a smaller image"


def is_api(path: str | None) -> bool:
    return path is not None and API_PATH.match(path) is not None


def error_json(text: str) -> bytes:
    return (json.dumps({"error": text}) + "\n").encode()


def error_page(status: int, text: str) -> bytes:
    """A plain page in the site's style (its stylesheet; no inline CSS, which the CSP forbids)."""
    sentence = html.escape(text[0].upper() + text[1:] + ".")
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n"
            "  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"  <title>Error {status} - Fashion-16</title>\n  <link rel=\"stylesheet\" href=\"/static/style.css\">\n"
            "</head>\n<body>\n  <header class=\"site-header\"><a class=\"brand\" href=\"/\">Fashion-16</a></header>\n"
            "  <main id=\"main\">\n    <section class=\"card error-card\">\n"
            f"      <h1>Sorry, that did not work <span class=\"status\">({status})</span></h1>\n"
            f"      <p class=\"alert\" role=\"alert\">{sentence}</p>\n"
            "      <a class=\"button\" href=\"/\">Back to search</a>\n    </section>\n  </main>\n</body>\n</html>\n"
            ).encode()
