"""The server the HTTP sections measure: real gunicorn, the shipped config, both built-in catalogs.

``python -m gunicorn wsgi:app`` from the repository root reads ./gunicorn.conf.py, as in
production; the catalogs, store folder and worker count come through FASHION16_* variables.
"""
from __future__ import annotations

import json
import sys
import urllib.request

from app.catalog import BUILTIN
from app.settings import Settings

from .servers import Server

GUNICORN = [sys.executable, "-m", "gunicorn", "wsgi:app"]


def server_env(settings: Settings, workers: int | None = None) -> dict[str, str]:
    """Serve exactly the built-in catalogs of ``settings``' store folder (no other store found there)."""
    env = {"FASHION16_STORE_DIR": str(settings.store_dir), "FASHION16_MODELS_DIR": str(settings.models_dir),
           "FASHION16_CATALOGS": ",".join(BUILTIN), "FASHION16_WORKERS": str(workers or settings.workers),
           "FASHION16_THREADS": str(settings.threads)}
    return env


def health(server: Server) -> dict:
    with urllib.request.urlopen(server.url + "/api/health", timeout=30) as response:
        return json.load(response)


def catalog_items(server: Server) -> dict[str, int]:
    """Items per served catalog, as the server reports them."""
    return {c["name"]: c["items"] for c in health(server)["catalogs"]}
