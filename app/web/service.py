"""The per-process search service: one Searcher, loaded when the app is created.

Loading the CNN and the index takes seconds, so it happens once in ``create_app`` and
every request reuses it through ``current_app``; nothing model-related is global.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from flask import Flask, current_app

from ..index_store import IndexStoreError, index_summary
from ..search import Searcher
from .imaging import png_bytes

EXTENSION = "fashion16"
PNG_CACHE_ITEMS = 20_000  # a 28x28 PNG is ~0.5 kB, so the cache stays around 10 MB


class StartupError(RuntimeError):
    """The model or index cannot be used, so the app must not start."""


class SearchService:
    """The Searcher plus the encoded gallery images the pages and API serve."""

    def __init__(self, searcher: Searcher, model_path: Path, index_path: Path):
        self.searcher, self.model_path, self.index_path = searcher, model_path, index_path
        self.index_info = index_summary(searcher.index)  # the index never changes while the process runs
        self.gallery_png = lru_cache(maxsize=PNG_CACHE_ITEMS)(self._encode_item)

    @property
    def stores_images(self) -> bool:
        """Fashion-MNIST indexes hold the 28x28 images; folder indexes point at files instead."""
        return self.searcher.index.images is not None

    def _encode_item(self, item_id: int) -> tuple[bytes, str]:
        """PNG bytes and their ETag for a stored gallery image (computed once, then cached)."""
        png = png_bytes(self.searcher.index.images[item_id])
        return png, hashlib.sha256(png).hexdigest()[:32]


def open_service(app: Flask) -> SearchService:
    """Load the model and index named in the config, or log why not and raise StartupError."""
    model_path, index_path = Path(app.config["MODEL_PATH"]), Path(app.config["INDEX_PATH"])
    try:
        searcher = Searcher.open(model_path, index_path)
    except (FileNotFoundError, IndexStoreError) as exc:
        reason = str(exc)  # these name the command that builds the missing file
    except (OSError, ValueError) as exc:
        reason = (f"the model {model_path} could not be loaded ({exc}); "
                  "train it again with `python -m app train`, then `python -m app index build`")
    else:
        # One blank query through every stage now, so the first user's query does not pay for
        # warming them up (measured: its scan took 23 ms instead of 0.2 ms without this).
        searcher.search(np.zeros(searcher.embedder.input_shape[:2], np.uint8), k=1, mode="direct")
        return SearchService(searcher, model_path, index_path)
    app.logger.error("Fashion-16 cannot start: %s", reason)
    raise StartupError(reason)


def service() -> SearchService:
    """The service of the app handling the current request."""
    return current_app.extensions[EXTENSION]
