"""The catalogs one web process serves, loaded when the app is created, and their item images.

Loading models and stores takes a moment, so it happens once in ``create_app`` and every
request reaches them through ``current_app`` (as flaskr's ``get_db``); nothing is global.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from flask import Flask, current_app

from ..catalog import Catalogs, open_catalogs
from ..imaging.display import png_bytes
from ..settings import Settings
from ..store import StoreError

EXTENSION = "fashion16"
PNG_CACHE_ITEMS = 20_000  # a 28x28 PNG is ~0.5 kB, so the cache stays around 10 MB


class StartupError(RuntimeError):
    """A catalog cannot be served, so the app must not start."""


class Service:
    """The served catalogs plus the PNG encodings of their store-held images (cached per process)."""

    def __init__(self, served: Catalogs):
        self.catalogs = served
        self.item_png = lru_cache(maxsize=PNG_CACHE_ITEMS)(self._encode)

    def _encode(self, catalog: str, item_id: int) -> tuple[bytes, str]:
        """PNG bytes and ETag of a store-held catalog image; KeyError for unknown items."""
        png = png_bytes(self.catalogs[catalog].item_image(item_id))
        return png, hashlib.sha256(png).hexdigest()[:32]


def load_service(app: Flask, settings: Settings) -> Service:
    """Open every served catalog and warm it up, or log why not (naming the fix) and raise StartupError."""
    try:
        served = open_catalogs(settings)
    except (FileNotFoundError, StoreError) as exc:
        reason = str(exc)  # these name the command that builds the missing file
    except (OSError, ValueError) as exc:
        reason = f"a model could not be loaded ({exc}); train it again with `python -m app train`"
    else:
        for catalog in served.values():
            # One blank query through every stage now, so the first user does not pay for warming
            # them up (measured: the first scan took 23 ms instead of 0.2 ms without this).
            catalog.search(np.zeros(catalog.model.input_shape[:2], np.uint8), k=1, mode="direct")
        return Service(served)
    app.logger.error("Fashion-16 cannot start: %s", reason)
    raise StartupError(reason)


def service() -> Service:
    """The service of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def catalogs() -> Catalogs:
    """The catalogs of the app handling the current request."""
    return service().catalogs
