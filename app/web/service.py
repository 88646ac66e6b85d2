"""The catalogs one web process serves, loaded when the app is created and kept at their latest version.

Loading models and stores takes a moment, so it happens once in ``create_app`` and every
request reaches them through ``current_app`` (as flaskr's ``get_db``); nothing is global.
A watcher thread looks for new store versions every ``FASHION16_RELOAD_SECONDS`` and swaps
them in (``Catalogs.refresh``): a running worker follows ``index add`` without a restart,
while each request keeps the one version it resolved (app/catalog.py).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import sqlite3
import sys
import threading
from functools import lru_cache

import numpy as np
from flask import Flask, current_app

from ..catalog import Catalogs, open_catalogs
from ..imaging.display import png_bytes
from ..privileges import worker_account
from ..saved_searches import SavedSearches
from ..settings import Settings
from ..stores import StoreError

EXTENSION = "fashion16"
WATCHER = "catalog-watcher"  # its thread's name in ps -T, top -H and /proc/PID/task/*/comm
PNG_CACHE_ITEMS = 20_000  # a 28x28 PNG is ~0.5 kB, so the cache stays around 10 MB
log = logging.getLogger("fashion16")


def name_this_thread(name: str) -> None:
    """The calling thread's name as the kernel shows it (Linux prctl PR_SET_NAME; elsewhere nothing)."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15])
    except (OSError, AttributeError):
        pass


class StartupError(RuntimeError):
    """A catalog cannot be served, so the app must not start."""


class Service:
    """The served catalogs, their version watcher, saved searches, and PNGs of store-held images (cached)."""

    def __init__(self, served: Catalogs, reload_seconds: float, logger: logging.Logger = log,
                 saved: SavedSearches | None = None):
        self.catalogs = served
        self.saved = saved  # None when results URLs are off (FASHION16_RESULTS=off)
        self.item_png = lru_cache(maxsize=PNG_CACHE_ITEMS)(self._encode)
        self.logger = logger
        self._stop = threading.Event()
        self._watcher = None
        if reload_seconds > 0:
            self._watcher = threading.Thread(target=self._watch, args=(reload_seconds,), name="catalog-watcher",
                                             daemon=True)
            self._watcher.start()

    def _encode(self, catalog: str, version_hash: str, item_id: int) -> tuple[bytes, str]:
        """PNG bytes and ETag of a store-held catalog image; KeyError for unknown items."""
        png = png_bytes(self.catalogs[catalog].snapshot.image(item_id))
        return png, hashlib.sha256(png).hexdigest()[:32]

    def refresh(self) -> None:
        """Swap in newer versions now; a version that fails verification is logged and not served."""
        try:
            for name, version in self.catalogs.refresh():
                self.logger.info("catalog %s: now serving version %d (worker %d)", name, version, os.getpid())
        except (StoreError, OSError, ValueError) as exc:
            self.logger.error("a new catalog version was not served: %s", exc)

    def _watch(self, seconds: float) -> None:
        name_this_thread(WATCHER)
        while not self._stop.wait(seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()


def load_service(app: Flask, settings: Settings) -> Service:
    """Open every served catalog and warm it up, or log why not (naming the fix) and raise StartupError."""
    try:
        served = open_catalogs(settings)
    except (FileNotFoundError, StoreError) as exc:
        reason = str(exc)  # these name the command that builds the missing file
    except (OSError, ValueError) as exc:
        reason = f"a model could not be loaded ({exc}); train it again with `python -m app train`"
    else:
        for name, catalog in served.items():  # what each store supports, one line each (Store.describe)
            print(f"[fashion16 {os.getpid()}] catalog {name} version {catalog.version}, {len(catalog):,} items: "
                  f"{catalog.store.describe()}", file=sys.stderr, flush=True)
        for catalog in served.values():
            # One blank query through every stage now, so the first user does not pay for warming
            # them up (measured: the first scan took 23 ms instead of 0.2 ms without this).
            catalog.search(np.zeros(catalog.model.input_shape[:2], np.uint8), k=1, mode="direct")
        try:
            saved = open_saved_searches(settings)
        except (OSError, sqlite3.Error, ValueError) as exc:
            reason = f"saved searches cannot be kept: {exc}"
        else:
            return Service(served, settings.reload_seconds, app.logger, saved)
    app.logger.error("Fashion-16 cannot start: %s", reason)
    raise StartupError(reason)


def open_saved_searches(settings: Settings) -> SavedSearches | None:
    """The saved-searches database of FASHION16_RESULTS_*, or None when results URLs are off."""
    if not settings.results:
        return None
    account = worker_account(settings)  # started as root: the folder is the serving user's
    return SavedSearches(settings.results_dir, settings.results_ttl_hours * 3600,
                         int(settings.results_max_mb * 2**20), None if account is None else (account.uid, account.gid))


def service() -> Service:
    """The service of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def catalogs() -> Catalogs:
    """The catalogs of the app handling the current request."""
    return service().catalogs
