"""``python -m app serve``: gunicorn running the app with the shipped gunicorn.conf.py."""
from __future__ import annotations

import os
import sys

from .settings import ROOT, Settings


def gunicorn_argv(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
            "--bind", settings.bind, "--workers", str(settings.workers), "wsgi:app"]


def serve(settings: Settings) -> int:
    """Replace this process with gunicorn (settings travel in the environment, as gunicorn.conf.py reads them)."""
    os.environ.update({"FASHION16_BIND": settings.bind, "FASHION16_WORKERS": str(settings.workers)})
    sys.stdout.flush()
    os.execv(sys.executable, gunicorn_argv(settings))
    return 0  # not reached
