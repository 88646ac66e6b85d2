"""What the pages and the API share: reading a query from the request and running it.

Client mistakes become HTTP errors here (BadRequest, NotFound) or ImageRejected from
preprocessing, so both front ends answer them the same way (see errors.py).
"""
from __future__ import annotations

import time

import numpy as np
from flask import current_app, request, url_for
from PIL import Image
from werkzeug.exceptions import BadRequest, NotFound

from ..preprocess import decode
from ..search import MAX_K, MODES
from .service import service

DEFAULT_K = 20
DEFAULT_MODE = "routed"
UPLOAD_FIELD = "image"


def upload_limit_mb() -> str:
    """The upload size limit (MAX_CONTENT_LENGTH) in MB, for messages."""
    return f"{(current_app.config['MAX_CONTENT_LENGTH'] or 0) / 2**20:.3g}"


def parse_k(raw: str | None) -> int:
    """The number of results asked for; DEFAULT_K when absent."""
    if raw is None or raw.strip() == "":
        return DEFAULT_K
    try:
        k = int(raw)
    except ValueError:
        k = 0
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be a whole number from 1 to {MAX_K}, got {raw!r}")
    return k


def parse_mode(raw: str | None) -> str:
    """The search mode asked for; DEFAULT_MODE when absent."""
    if raw is None or raw == "":
        return DEFAULT_MODE
    if raw not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, got {raw!r}")
    return raw


def read_upload() -> bytes:
    """The uploaded file's bytes; an empty file is left for decode() to reject with its own message."""
    file = request.files.get(UPLOAD_FIELD)
    if file is None or not file.filename:
        raise BadRequest(f"no image was uploaded: choose a JPEG, PNG, WebP or GIF file "
                         f"(multipart form field {UPLOAD_FIELD!r})")
    return file.read()


def run_search(query: Image.Image | np.ndarray, k: int, mode: str) -> dict:
    """Search the gallery and return the API's JSON shape, with URLs of the result images."""
    searcher = service().searcher
    result = searcher.search(query, k=k, mode=mode)
    return searcher.payload(result, image_url=lambda item_id: url_for("gallery.image", item_id=item_id))


def search_upload(k: int, mode: str) -> tuple[dict, Image.Image]:
    """Decode the upload once (the pages also show it), search with it, and count decoding in the timings."""
    data = read_upload()
    start = time.perf_counter()
    image = decode(data, current_app.config["MAX_PIXELS"])
    decode_ms = round(1000 * (time.perf_counter() - start), 3)
    payload = run_search(image, k, mode)
    timings = {"decode": decode_ms, **payload["timings_ms"]}
    timings["total"] = round(timings["total"] + decode_ms, 3)
    payload["timings_ms"] = timings
    return payload, image


def item_query(item_id: int) -> Image.Image | np.ndarray:
    """A catalog item's own image as a query ("more like this"); NotFound for unknown items."""
    try:
        stored = service().searcher.item_image(item_id)
    except (KeyError, FileNotFoundError):
        raise NotFound(f"there is no catalog item {item_id}") from None
    return decode(stored, current_app.config["MAX_PIXELS"]) if isinstance(stored, bytes) else stored
