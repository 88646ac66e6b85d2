"""Fashion-16: search clothing catalogs by photo.

``create_app`` is the Flask application factory (the Flask tutorial's pattern). Flask and
the catalogs are imported inside it so the command line (``python -m app ...``) does not
pay for the web layer it never uses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings


def create_app(settings: Settings | None = None, config: dict[str, Any] | None = None) -> Flask:
    """Build the web app from ``settings`` (default: FASHION16_* variables); ``config`` overrides Flask keys.

    The catalogs (models and stores) are loaded here, once per process; a missing or
    mismatched one stops the app with a log line naming the command that builds it.
    """
    from flask import Flask

    from . import web
    from .settings import ROOT
    from .settings import Settings as _Settings

    settings = settings or _Settings.from_env()
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.from_mapping(MAX_CONTENT_LENGTH=settings.max_upload_bytes, MAX_PIXELS=settings.max_pixels,
                            SETTINGS=settings)
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # keep the API's documented key order (category before results)
    app.logger.setLevel(settings.log_level.upper())  # version swaps and admin changes are logged at INFO
    web.init_app(app, settings)
    return app
