"""``python -m app bench``: every section in one run, so machine noise is shared, then the report.

A section that fails is recorded under ``errors`` and the run goes on, so a 25-minute run
is never lost to one broken part; the command then exits non-zero.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .. import config
from .goals import check_goals
from .profile import FULL, QUICK, TABLE_BITS, Profile

DOCS = config.ROOT / "docs"
HTTP_QUERY_IMAGES = 500


def section(results: dict, name: str, run: Callable[[], dict]) -> None:
    """Run one section, time it, merge its keys; a failure is logged and kept instead of raised."""
    print(f"\n== {name} ==", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        results.update(run())
    except Exception as exc:  # the run goes on; the error is in the JSON and the report
        traceback.print_exc()
        results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
    results["meta"]["section_seconds"][name] = round(time.perf_counter() - start, 1)


def served_index(work, profile: Profile, tmp: Path) -> Path:
    """The default 60k index (built if absent or stale) in full runs; a small temporary one otherwise."""
    from ..index_store import write_index
    from ..indexer import ensure_index

    if profile.use_default_index:
        ensure_index(work.embedder, config.index_path(), bits=TABLE_BITS)
        return config.index_path()
    return write_index(work.index(TABLE_BITS), tmp / "bench.h5")


def model_sections(results: dict, profile: Profile, model: Path) -> None:
    """Sections 2-5, which share one loaded model and one pass of the images through it."""
    from ..model import Embedder
    from .e2e import run_e2e
    from .indexing import run_indexing
    from .paper import run_paper_tables
    from .quality import Workload, run_quality

    loaded: list[Workload] = []

    def load() -> dict:
        loaded.append(Workload.load(Embedder(model), profile.gallery, profile.queries))
        return {}

    section(results, "model outputs for the gallery and queries", load)
    if not loaded:
        return
    work = loaded[0]
    with tempfile.TemporaryDirectory() as tmp:
        section(results, "2. end to end HTTP", lambda: run_e2e(
            model, served_index(work, profile, Path(tmp)), work.query_images[:HTTP_QUERY_IMAGES],
            profile.http_requests, profile.http_clients, profile.http_seconds))
    section(results, "3. indexing", lambda: run_indexing(model, profile.index_images))
    section(results, "4. quality vs code length",
            lambda: run_quality(work, profile.quality_bits, anchor_seconds=2 * profile.core_seconds))
    section(results, "5. paper tables", lambda: {"paper_tables": run_paper_tables(
        work, results["quality_by_bits"], profile.table2_steps)})


def to_json(results: dict) -> str:
    """JSON text; NumPy scalars become plain numbers."""
    return json.dumps(results, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n"


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(results))
    print(f"wrote {path}", file=sys.stderr)


def run_bench(quick: bool = False, json_path: str | None = None, report_dir: str | None = None,
              profile: Profile | None = None) -> dict:
    """Run every section; write the JSON and (the full profile, or when ``report_dir`` is given) the report."""
    from .core import run_core
    from .environment import environment
    from .report import print_goals, write_report

    profile = profile or (QUICK if quick else FULL)
    model = config.model_path()
    out_dir = Path(report_dir) if report_dir else (DOCS if profile == FULL else None)
    start = time.perf_counter()
    results: dict = {"meta": {**environment(profile.name, str(model)), "section_seconds": {}}}
    section(results, "1. search core", lambda: run_core(profile))
    model_sections(results, profile, model)
    results["meta"]["total_seconds"] = round(time.perf_counter() - start, 1)
    results["goals"] = check_goals(results)
    results = json.loads(to_json(results))  # the report sees exactly what the JSON holds
    for path in {Path(p) for p in (json_path, out_dir and out_dir / "benchmarks.json") if p}:
        write_json(results, path)
    if out_dir:
        write_report(results, out_dir)
    print_goals(results)
    return results
