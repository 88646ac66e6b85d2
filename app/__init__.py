"""Fashion-16: search clothing catalogs by photo.

``create_app`` is the Flask application factory (the Flask tutorial's pattern). Flask and
the model stack are imported inside it so the command line (``python -m app ...``) does not
pay for the web layer it never uses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the web app; ``config`` overrides the settings read from FASHION16_* variables.

    The model and index are loaded here, once per process, and a missing or mismatched
    one stops the app with a log line naming the command that builds it.
    """
    from flask import Flask

    from . import web
    from .config import ROOT
    from .web.settings import from_env

    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.from_mapping(from_env())
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # keep the API's documented key order (category before results)
    web.init_app(app)
    return app
