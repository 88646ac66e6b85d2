"""``python -m bench``: every section in one run, so machine noise is shared, then the report.

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

from app.catalog import model_path
from app.fashion_mnist import load_fashion_mnist
from app.reports import to_json, write_json
from app.runtime import LiteRTModel
from app.settings import ROOT, Settings

from .goals import check_goals
from .profile import FULL, QUICK, Profile
from .ratios import side_by_side

DOCS = ROOT / "docs"
HTTP_FASHION_IMAGES = 500


def merge(results: dict, new: dict) -> None:
    """Add a section's keys; an object two sections fill (``photos``) gets both sections' keys."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(results.get(key), dict):
            results[key].update(value)
        else:
            results[key] = value


def section(results: dict, name: str, run: Callable[[], dict]) -> None:
    """Run one section, time it, merge its keys; a failure is logged and kept instead of raised."""
    print(f"\n== {name} ==", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        merge(results, run())
    except Exception as exc:  # the run goes on; the error is in the JSON and the report
        traceback.print_exc()
        results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
    results["meta"]["section_seconds"][name] = round(time.perf_counter() - start, 1)


def model_sections(results: dict, profile: Profile, settings: Settings, tmp: Path) -> None:
    """Every section after the search core: they share the Fashion-MNIST workload, the stores and the uploads."""
    from .e2e import run_e2e
    from .forward import run_forward
    from .indexing import run_indexing
    from .living import run_living
    from .paper import run_paper_tables
    from .quality import run_quality
    from .stores import served_stores
    from .under_load import available, run_load_section
    from .uploads import Uploads
    from .workload import Workload

    state: dict = {}

    def load_workload() -> dict:
        model = LiteRTModel(model_path(settings, "fashion16"), settings.inference_threads)
        state["work"] = Workload.load(model, profile.gallery, profile.queries)
        return {}

    def prepare_serving() -> dict:
        state["served"] = served_stores(settings, profile, tmp, state.get("work"))
        fashion = load_fashion_mnist(download=False).x_test[:HTTP_FASHION_IMAGES]
        state["uploads"] = Uploads.make(profile.photo_queries, fashion)
        return {}

    section(results, "model outputs for the gallery and queries", load_workload)
    section(results, "stores and uploads for the HTTP sections", prepare_serving)
    if "uploads" in state:
        from .abuse import run_abuse
        from .worker import run_worker

        served, uploads = state["served"], state["uploads"]
        section(results, "2. end to end HTTP", lambda: run_e2e(served, uploads, profile))
        section(results, "2b. one serving worker", lambda: run_worker(served, uploads, profile))
        if available():
            section(results, "2c. under load", lambda: run_load_section(served, uploads, profile))
        else:
            results["meta"]["skipped"] = {"2c. under load": "bench/load.py is not in this checkout"}
        section(results, "2d. abuse", lambda: run_abuse(served, uploads, profile))
    section(results, "3. indexing", lambda: run_indexing(profile.index_images, profile.photo_index_images))
    if "work" in state:
        work = state["work"]
        section(results, "4. quality vs code length",
                lambda: run_quality(work, profile.quality_bits, anchor_seconds=2 * profile.core_seconds))
        section(results, "5. paper tables", lambda: {"paper_tables": run_paper_tables(
            work, results["quality_by_bits"], profile.table2_steps)})
    section(results, "6. forward pass by runtime", lambda: run_forward(settings, profile.forward_samples))
    section(results, "7. living catalogs", lambda: run_living(settings, profile, tmp))


def run_bench(quick: bool = False, json_path: str | None = None, report_dir: str | None = None,
              profile: Profile | None = None, settings: Settings | None = None) -> dict:
    """Run every section; write the JSON and (the full profile, or when ``report_dir`` is given) the report."""
    from .core import run_core
    from .environment import environment
    from .report import print_goals, write_report

    profile = profile or (QUICK if quick else FULL)
    settings = settings or Settings.from_env()
    out_dir = Path(report_dir) if report_dir else (DOCS if profile == FULL else None)
    start = time.perf_counter()
    results: dict = {"meta": {**environment(profile.name, settings), "section_seconds": {}}}
    section(results, "1. search core", lambda: run_core(profile))
    with tempfile.TemporaryDirectory(prefix="fashion16-bench-") as tmp:
        Path(tmp).chmod(0o711)  # servers started as root serve as FASHION16_USER, who follows the stores in it
        model_sections(results, profile, settings, Path(tmp))
    results["meta"]["total_seconds"] = round(time.perf_counter() - start, 1)
    results["ratios"] = side_by_side(results)
    results["goals"] = check_goals(results)
    results = json.loads(to_json(results))  # the report sees exactly what the JSON holds
    for path in {Path(p) for p in (json_path, out_dir and out_dir / "benchmarks.json") if p}:
        write_json(results, path)
        print(f"wrote {path}", file=sys.stderr)
    if out_dir:
        write_report(results, out_dir)
    print_goals(results)
    return results
