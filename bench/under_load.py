"""The load section: ``bench/load.py``'s ``run_load`` against the production-config server.

Good uploads (400-px photos and Fashion-MNIST PNGs) and bad ones (truncated JPEG, text,
BMP, empty) are mixed; the report counts requests/s, latency and every error kind, with
the workers' memory before and after. ``bench/load.py`` is written apart and merged later:
until it is there, the runner skips this section and says so.
"""
from __future__ import annotations

import importlib.util
import inspect
import tempfile
from pathlib import Path

from app.settings import Settings

from .profile import Profile
from .servers import running
from .serving import GUNICORN, server_env
from .uploads import Uploads

BURST = 16


def available() -> bool:
    return importlib.util.find_spec(".load", __package__) is not None


def run_load_section(settings: Settings, uploads: Uploads, profile: Profile) -> dict:
    from .load import run_load

    with tempfile.TemporaryDirectory() as tmp, \
            running(GUNICORN, server_env(settings), Path(tmp) / "gunicorn.log") as server:
        options = {"clients": profile.http_clients, "seconds": profile.load_seconds, "burst": BURST}
        if "master_pid" in inspect.signature(run_load).parameters:
            options["master_pid"] = server.process.pid
        return {"load": run_load(server.url, uploads.good, uploads.bad, **options)}
