"""Smoke test of ``python -m bench``: every section at tiny sizes, the JSON's keys and counts, the report.

Speed is never asserted: the bench reports its figures against the goals, tests only check
that every section runs, measures what the profile asks for and says what it measured.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main as app_main
from app.settings import ROOT, Settings
from bench import run_bench
from bench.__main__ import main as bench_main
from bench.features import hog, intensity_histogram
from bench.profile import Profile
from bench.timing import peak_rss_bytes
from bench.under_load import available as load_available

TINY = Profile("tiny", core_n=(2_000,), core_bits=(64, 256), core_queries=8, core_batches=1, core_seconds=0.05,
               http_requests=5, http_seconds=1.0, index_images=256, gallery=600, queries=24, photo_queries=4,
               photo_index_images=12, requests_12mp=2, large_png_requests=3, forward_samples=3, load_seconds=1.0,
               quality_bits=(64, 256), table2_steps=2, http_clients=2, builtin_stores=False, small_store_photos=3,
               living_photos=60, living_add=4, living_serve_add=3, living_warm_s=1.0, living_after_s=3.0,
               abuse_seconds=1.0)
NUMBER = (int, float)
RUNTIMES = ("keras", "litert_1_thread", "litert_2_threads")
FP32 = "litert_fp32_1_thread"  # bench/forward.py: the float32 conversion of an int8-served model
PLOTS = ("bench_core_latency.png", "bench_recall_latency.png", "bench_quality_bits.png", "bench_table2_gallery.png",
         "bench_forward_ms.png")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    run_bench(json_path=str(out / "run.json"), report_dir=str(out / "report"), profile=TINY)
    return json.loads((out / "run.json").read_text()), out


@pytest.mark.slow
def test_every_section_ran(bench):
    results, _ = bench
    assert "errors" not in results, results.get("errors")
    sections = results["meta"]["section_seconds"]
    assert {"1. search core", "2. end to end HTTP", "2b. one serving worker", "2d. abuse", "3. indexing",
            "4. quality vs code length", "5. paper tables", "6. forward pass by runtime",
            "7. living catalogs"} <= sections.keys()
    if load_available():
        assert "2c. under load" in sections and isinstance(results["load"], dict)
    else:
        assert "2c. under load" in results["meta"]["skipped"]


def test_top_level_keys_and_types(bench):
    results, _ = bench
    for key in ("e2e_p50_ms_1_client", "e2e_p99_ms_1_client", "e2e_rps_8_clients", "index_items_per_s",
                "photo_index_items_per_s", "ram_bytes_per_item", "worker_rss_mb", "worker_boot_s"):
        assert isinstance(results[key], NUMBER) and results[key] > 0, key
    assert results["e2e_errors"] == 0
    assert {"core", "core_memory", "core_scan_ratio", "e2e", "photos", "worker", "indexing", "indexing_photos",
            "quality", "quality_by_bits", "paper_tables", "forward_ms", "forward", "ratios", "goals",
            "meta"} <= results.keys()
    assert set(results["meta"]["models"]) == {"photos.tflite", "fashion16.tflite"}


def test_fashion_mnist_over_http_made_the_requests_the_profile_asks(bench):
    e2e = bench[0]["e2e"]
    assert e2e["one_client"]["samples"] == TINY.http_requests and e2e["one_client"]["errors"] == 0
    assert e2e["concurrent"]["clients"] == TINY.http_clients and e2e["concurrent"]["requests"] > 0
    assert e2e["catalogs"] == {"photos": 10 * TINY.small_store_photos, "fashion-mnist": TINY.gallery}
    assert e2e["workers"] == Settings.from_env().workers  # the shipped config: one worker per CPU unless set


def test_photos_figures(bench):
    photos = bench[0]["photos"]
    for key in ("e2e_p50_ms_400px", "e2e_p99_ms_400px", "e2e_p50_ms_12mp", "e2e_rps_8_clients", "large_png_ms"):
        assert isinstance(photos[key], float) and photos[key] > 0, key
    assert photos["e2e_errors"] == 0
    assert photos["one_client_400px"]["samples"] == TINY.http_requests
    assert photos["one_client_12mp"]["samples"] == TINY.requests_12mp
    assert photos["concurrent"]["requests"] > 0 and photos["concurrent"]["errors"] == 0
    uploads = photos["uploads"]
    assert uploads["photos_400px"] == TINY.photo_queries
    assert sorted(uploads["jpeg_12mp_size"]) == [3024, 4032] and uploads["jpeg_12mp_bytes"] > 1_000_000
    assert uploads["large_png_size"] == [6300, 6300] and uploads["large_png_bytes"] < 1_000_000


def test_large_png_is_refused_from_its_header(bench):
    photos = bench[0]["photos"]
    assert photos["large_png_status"] == 413
    assert photos["large_png"]["statuses"] == {"413": TINY.large_png_requests}
    assert isinstance(photos["large_png_rss_growth_mb"], NUMBER)
    assert photos["large_png"]["rss_after_mb"] > 0 and photos["large_png"]["rss_before_mb"] > 0


def test_one_worker_serves_both_catalogs(bench):
    worker = bench[0]["worker"]
    assert worker["warmup_errors"] == 0 and worker["warmup_requests"] > 0
    assert worker["catalogs"] == {"photos": 10 * TINY.small_store_photos, "fashion-mnist": TINY.gallery}
    assert worker["rss_after_warmup_mb"] == bench[0]["worker_rss_mb"] > 0


def test_abuse_section_measured_bombs_strips_and_the_rate_limit(bench):
    """Statuses, not speed: the bombs refused (413), the strip searched, the greedy client limited."""
    abuse = bench[0]["abuse"]
    assert abuse["bombs"]["sent"] > 0 and set(abuse["bombs"]["statuses"]) == {"413"}
    assert abuse["photo_alone"]["samples"] > 0 and abuse["photo_during_bombs"]["samples"] > 0
    assert abuse["strip_10000x1"]["status"] == 200
    assert set(abuse["greedy_client"]["statuses"]) <= {"200", "429"} and abuse["greedy_client"]["share_429"] > 0
    assert set(abuse["other_client_during"]["statuses"]) == {"200"}


def test_forward_ms_has_both_runtimes_for_both_models(bench):
    results = bench[0]
    assert set(results["forward_ms"]) == {"photos", "fashion16"}
    for model, figures in results["forward_ms"].items():
        assert all(isinstance(figures[r], float) and figures[r] > 0 for r in RUNTIMES), model
        assert figures["keras_over_litert"] == round(figures["keras"] / figures["litert_1_thread"], 2)
        assert figures["samples"] == TINY.forward_samples
        detail = results["forward"][model]
        assert detail["same_top_class"], model  # Keras and LiteRT compute the same model
        timed = RUNTIMES + ((FP32,) if detail["served"] == "int8" else ())  # int8 beside its float32 conversion
        assert {r: s["samples"] for r, s in detail["runtimes"].items()} == dict.fromkeys(timed, TINY.forward_samples)
    assert results["forward"]["photos"]["input"][2] == 3  # colour photos, at the size the model was trained at
    photos = results["forward"]["photos"]
    assert photos["served"] == "int8" and 0 < results["forward_ms"]["photos"]["int8_over_fp32"]
    assert photos["int8_embedding_cosine"] > 0.9 and isinstance(photos["int8_same_top_class"], bool)
    assert results["forward"]["fashion16"]["input"] == [28, 28, 1]


def test_core_rows(bench):
    results = bench[0]
    rows = results["core"]
    assert len(rows) == len(TINY.core_n) * len(TINY.core_bits) * (2 * 2 + 3)  # 2 splits x 2 modes, 3 baselines
    assert {r["method"] for r in rows} == {"routed", "direct", "faiss_flat", "numpy_scan", "exact_cosine"}
    assert {(r["bits"], r["split"]) for r in rows} == {(64, "uniform"), (256, "uniform"), (64, "skewed"),
                                                       (256, "skewed")}
    for r in rows:
        assert r["n"] == 2_000
        assert all(isinstance(r[k], float) and r[k] > 0 for k in ("p50_ms", "p99_ms", "qps_batch"))
    assert {r["bits"] for r in results["core_scan_ratio"]} == set(TINY.core_bits)
    assert all(r["numpy_vs_faiss"] > 0 for r in results["core_scan_ratio"])


def test_indexing_built_what_the_profile_asks_on_litert(bench):
    results = bench[0]
    assert results["indexing"]["images"] == TINY.index_images
    assert results["indexing_photos"]["images"] == TINY.photo_index_images
    for key in ("indexing", "indexing_photos"):
        stats = results[key]
        assert stats["runtime"] == "litert" and stats["file_bytes"] > 0 and stats["peak_rss_bytes"] > 0


def test_quality_rows(bench):
    results = bench[0]
    rows = results["quality_by_bits"]
    assert [r["bits"] for r in rows] == list(TINY.quality_bits)
    for r in rows:
        assert set(r["latency"]) == {"routed", "direct", "soft"}
        assert all(s["samples"] == TINY.queries for s in r["latency"].values())
    assert results["quality"]["queries"] == TINY.queries and results["quality"]["runtime"] == "litert"


def test_paper_tables(bench):
    tables = bench[0]["paper_tables"]
    assert [r["gallery"] for r in tables["table2"]] == [300, 600, 300_000]
    assert len(tables["table3"]) == 3 and tables["table3"][-1]["feature"].startswith("CNN")
    assert [r["mode"] for r in tables["table4"]] == ["routed", "direct", "soft"]
    assert tables["table4"][0]["paper_query_ms"] == 3241.0


def test_goals_are_reported_not_asserted(bench):
    goals = bench[0]["goals"]
    assert all(isinstance(g["met"], bool) and g["target"] for g in goals)
    missing = [g["goal"] for g in goals if g["measured"] is None]
    assert not missing, f"goals without their figure (a key the goals read is not written): {missing}"
    names = " ".join(g["goal"] for g in goals)
    assert "12-megapixel" in names and "6300x6300" in names and "boot" in names
    assert "vs FAISS" not in names  # our scan is FAISS: that comparison is a figure, not a goal


def test_side_by_side_ratios_are_all_measured(bench):
    ratios = bench[0]["ratios"]
    assert ratios and all(isinstance(v, NUMBER) and v > 0 for v in ratios.values()), ratios


def test_report_renders_the_new_figures_and_regenerates_from_json(bench, tmp_path):
    _, out = bench
    page = (out / "report" / "benchmarks.md").read_text()
    for heading in ("## Goals", "## 1. Search core", "## 2. Serving", "### One lean worker",
                    "### Side-by-side ratios", "## 2c. Under load", "## 2d. Abuse", "## 3. Indexing", "## 4. Quality",
                    "### Table 2",
                    "### Table 3", "### Table 4", "## 6. The forward pass"):
        assert heading in page
    assert "Not available in this run" not in page
    assert "| measure | photos | Fashion-MNIST | paper |" in page
    assert "![Forward pass by model and runtime](bench_forward_ms.png)" in page
    for name in PLOTS:
        assert (out / "report" / name).stat().st_size > 0
    assert bench_main(["--report-only", str(out / "run.json"), "--report-dir", str(tmp_path)]) == 0
    assert (tmp_path / "benchmarks.md").read_text() == page
    assert all((tmp_path / name).is_file() for name in PLOTS)


def test_living_catalogs_add_in_place_and_every_worker_follows(bench):
    """Issue 15 end to end: in-place adds keep every id, a just-added photo finds itself, and while 4 clients
    search a served catalog, `index add` moves both workers to the new version with no answer mixing two."""
    living = bench[0]["living"]
    assert living["catalog_items"] == 60 - 3 and living["added"] == 4 and living["rebuild_kept_ids"] == 57
    assert living["added_found_first"] == {"routed": 1.0, "direct": 1.0} and living["added_min_similarity"] >= 0.99
    assert living["add_seconds"] > 0 and living["rebuild_seconds"] > 0
    serving = living["serving"]
    assert serving["errors"] == 0 and serving["mixed_versions"] == 0 and serving["answers"] > 0
    assert serving["new_version"] == 4 and serving["versions_seen"][-1] == 4  # build, add, rebuild, served add
    assert serving["workers_on_new_version"] == serving["workers"] == 2


def test_app_bench_help_is_the_bench_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        app_main(["bench", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m app bench") and "--report-only" in out and "--quick" in out


def test_handcrafted_features_are_unit_vectors(fmnist):
    images = fmnist.x_test[:5]
    for feature, dim in ((hog, 6 * 6 * 4 * 9), (intensity_histogram, 32)):
        x = feature(images)
        assert x.shape == (5, dim)
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_peak_memory_of_a_child_is_its_own_not_its_parents():
    """The indexing builds run in children of the (large) benchmark process; their peak must not include ours."""
    ballast = np.ones(64 * 2**20)  # 512 MB, touched, in this parent
    child = subprocess.run([sys.executable, "-c", "from bench.timing import peak_rss_bytes; print(peak_rss_bytes())"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert 0 < int(child.stdout) < 256 * 2**20 < ballast.nbytes
    assert peak_rss_bytes() >= ballast.nbytes
