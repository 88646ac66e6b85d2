"""Writing a long job's JSON report (evaluate, photo-study, bench): one writer for all of them."""
from __future__ import annotations

import json
from pathlib import Path


def to_json(report: dict) -> str:
    """JSON text; NumPy scalars and arrays become plain numbers and lists."""
    return json.dumps(report, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)) + "\n"


def write_json(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(report))
    return path
