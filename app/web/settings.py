"""Web settings from FASHION16_* environment variables, so one build runs anywhere (twelve-factor).

Each variable maps to a Flask config key; ``create_app(config)`` can override any key,
which is how the tests point the app at a small index.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .. import config
from ..preprocess import MAX_PIXELS

DEFAULT_UPLOAD_MB = 10
DEFAULT_IMAGE_MAX_AGE = 86_400  # gallery images only change when the index is rebuilt


def _number(name: str, default: float, cast: Callable[[str], Any]) -> Any:
    """A positive number from the environment; a typo stops startup naming the variable, not a traceback."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


def from_env() -> dict[str, Any]:
    """The app's config keys, read from the environment (model and index paths as the CLI reads them)."""
    return {
        "MODEL_PATH": str(config.model_path()),
        "INDEX_PATH": str(config.index_path()),
        "MAX_CONTENT_LENGTH": int(_number("FASHION16_MAX_UPLOAD_MB", DEFAULT_UPLOAD_MB, float) * 1024 * 1024),
        "MAX_PIXELS": _number("FASHION16_MAX_PIXELS", MAX_PIXELS, int),
        "IMAGE_MAX_AGE": _number("FASHION16_IMAGE_MAX_AGE", DEFAULT_IMAGE_MAX_AGE, int),
    }
