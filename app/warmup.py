"""Every kind of request once, in process, before a gunicorn worker gives up root (app/privileges.py).

Python reads a module the first time something imports it, and a request imports some
(a codec for the Host header, Pillow's plugins, Jinja's compiled pages). Where Python is
installed below a folder only root may enter (pyenv in /root, as on the build machine),
the unprivileged worker could not read them any more: every request failed with
"unknown encoding: idna" until this warm-up ran each route, each image format and each
error path once before the switch. Nothing here reaches a client or a log.
"""
from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image
from werkzeug.test import Client

SAMPLE_SIDE = 64


def sample_images() -> dict[str, bytes]:
    """A small picture in every format the app accepts."""
    picture = Image.new("RGB", (SAMPLE_SIDE, SAMPLE_SIDE), (236, 232, 226))
    picture.paste((40, 50, 110), (16, 8, 48, 56))
    out = {}
    for fmt in ("PNG", "JPEG", "WEBP", "GIF"):
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        out[fmt.lower()] = buffer.getvalue()
    return out


def warm_up(app: Callable) -> None:
    """Run the WSGI ``app`` through its pages, API, images and error answers once."""
    Image.init()  # every Pillow plugin, as an upload of an unknown kind would import them
    client = Client(app)
    health = client.get("/api/health").get_json() or {}
    for path in ("/", "/no-such-page", "/api/no-such-call", "/static/style.css"):
        client.get(path).close()
    client.get("/api/search").close()  # 405
    client.post("/api/search", data={"image": (io.BytesIO(b"not an image"), "x.txt")}).close()  # 400
    images = sample_images()
    for catalog in health.get("catalogs", []):
        for fmt, data in images.items():
            found = client.post("/api/search", data={"catalog": catalog["name"],
                                                     "image": (io.BytesIO(data), f"query.{fmt}")})
            results = (found.get_json() or {}).get("results") or []
            found.close()
        client.post("/search", data={"catalog": catalog["name"],
                                     "image": (io.BytesIO(images["jpeg"]), "query.jpg")}).close()
        if results:
            client.get(results[0]["image_url"]).close()
            client.get(f"/item/{catalog['name']}/{results[0]['id']}").close()
