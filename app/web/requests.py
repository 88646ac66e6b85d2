"""Reading a search request: which catalog, how many results, which mode, and the uploaded file.

Both front ends (pages and API) read requests here, so a bad field gets the same 400 and
the same message everywhere. Fields may come from the form or the query string; a field
given twice with different values is refused rather than one silently winning.
"""
from __future__ import annotations

import io
import re
from typing import IO

from flask import Request, current_app, request
from werkzeug.exceptions import BadRequest

from ..catalog import Catalog
from ..imaging.crop import Box
from ..search import DEFAULT_K, MAX_K, MODES
from .service import catalogs

UPLOAD_FIELD = "image"
K_PATTERN = re.compile(r"[0-9]{1,3}")  # ASCII digits only: no "1_0", no full-width "１０", no "+5"


def field(name: str) -> str | None:
    """One value of a field from the form or the query string; BadRequest if its values disagree."""
    values = {v.strip() for v in request.form.getlist(name) + request.args.getlist(name)}
    values.discard("")
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once with different values ({', '.join(sorted(values))})")
    return values.pop() if values else None


def parse_k(raw: str | None) -> int:
    """The number of results asked for; DEFAULT_K when absent."""
    if raw is None:
        return DEFAULT_K
    k = int(raw) if K_PATTERN.fullmatch(raw) else 0
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be a whole number from 1 to {MAX_K}, got {raw!r}")
    return k


def parse_mode(raw: str | None, catalog: Catalog) -> str:
    """The search mode asked for; the catalog's default (its model card's) when absent."""
    if raw is None:
        return catalog.default_mode
    if raw not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, got {raw!r}")
    return raw


def parse_category(raw: str | None, catalog: Catalog) -> list[str] | None:
    """The one category to search in, when asked for: one the catalog has items in."""
    if raw is None:
        return None
    if raw not in catalog.stocked():
        raise BadRequest(f"category must be one the {catalog.name} catalog has items in "
                         f"({', '.join(catalog.stocked())}), got {raw!r}")
    return [raw]


FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def parse_flag(raw: str | None, name: str) -> bool:
    """A yes/no field; absent means no."""
    if raw is None:
        return False
    if raw.lower() not in FLAGS:
        raise BadRequest(f"{name} must be 1 or 0 (true/false), got {raw!r}")
    return FLAGS[raw.lower()]


def parse_box(raw: str | None) -> Box | None:
    """The crop box, x,y,w,h in fractions of the picture; None for none (or the whole picture)."""
    if raw is None:
        return None
    try:
        box = Box.parse(raw)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return None if box.whole else box


def parse_catalog(raw: str | None) -> Catalog:
    """The catalog asked for; the default one when absent."""
    try:
        return catalogs().resolve(raw)
    except KeyError as exc:
        raise BadRequest(exc.args[0]) from None


def read_upload() -> bytes:
    """The uploaded file's bytes; an empty file is left for decoding to reject with its own message."""
    files = [f for f in request.files.getlist(UPLOAD_FIELD) if f.filename]
    if not files:
        raise BadRequest(f"no image was uploaded: choose a JPEG, PNG, WebP or GIF file "
                         f"(multipart form field {UPLOAD_FIELD!r})")
    if len(files) > 1:
        raise BadRequest(f"upload one image at a time ({len(files)} were sent in {UPLOAD_FIELD!r})")
    return files[0].read()


def upload_limit_mb() -> str:
    """The upload size limit (MAX_CONTENT_LENGTH) in MB, for messages."""
    return f"{(current_app.config['MAX_CONTENT_LENGTH'] or 0) / 2**20:.3g}"


class UploadRequest(Request):
    """Keeps uploaded files in memory, so an upload is never written to disk.

    Werkzeug spools a part to a temporary file once the body passes 500 kB (a phone photo
    does); here the body is already bounded by MAX_CONTENT_LENGTH (and nginx's own limit).
    """

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()
