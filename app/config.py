"""Where the model and index live: defaults in the repository, overridable by environment."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "fashion16.keras"
DEFAULT_INDEX = ROOT / "index_store" / "fashion_mnist.h5"


def model_path() -> Path:
    return Path(os.environ.get("FASHION16_MODEL") or DEFAULT_MODEL)


def index_path() -> Path:
    return Path(os.environ.get("FASHION16_INDEX") or DEFAULT_INDEX)
