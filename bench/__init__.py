"""Benchmarks (issues 4 and 10): search core, HTTP and lean serving, indexing, quality, the paper's tables.

A top-level package beside ``app/``, run from a checkout (``python -m bench``) with its own
requirements (bench/requirements.txt: TensorFlow for the Keras comparison, matplotlib);
the serving image carries ``app/`` only. ``run_bench`` runs every section and writes the
JSON and the report; ``render_report`` rebuilds ``docs/benchmarks.md`` and its plots from a
saved JSON. Sections are imported lazily so ``python -m bench.indexing`` (the indexing
child) loads only what it uses.
"""
from __future__ import annotations

from pathlib import Path

from .profile import Profile


def run_bench(quick: bool = False, json_path: str | None = None, report_dir: str | None = None,
              profile: Profile | None = None) -> dict:
    from .runner import run_bench as run

    return run(quick=quick, json_path=json_path, report_dir=report_dir, profile=profile)


def render_report(json_path: str | Path, out_dir: str | Path) -> Path:
    from .report import render_report as render

    return render(json_path, out_dir)
