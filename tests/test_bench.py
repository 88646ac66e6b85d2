"""Smoke test of ``python -m app bench``: every section at tiny sizes, the JSON's keys and types, the report.

Speed is never asserted: the bench reports its figures against the goals, tests only check
that every section runs and says what it measured.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from app.bench import run_bench
from app.bench.features import hog, intensity_histogram
from app.bench.profile import Profile
from app.bench.timing import peak_rss_bytes
from app.cli import main
from app.config import ROOT
from app.preprocess import prepare

TINY = Profile("tiny", core_n=(2_000,), core_bits=(64, 256), core_queries=8, core_batches=1, core_seconds=0.2,
               http_requests=5, http_seconds=1.0, index_images=256, gallery=600, queries=24,
               quality_bits=(64, 256), table2_steps=2, http_clients=2, use_default_index=False)
NUMBER = (int, float)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    results = run_bench(json_path=str(out / "run.json"), report_dir=str(out / "report"), profile=TINY)
    return results, out


def test_every_section_ran(bench):
    results, _ = bench
    assert "errors" not in results, results.get("errors")


def test_top_level_keys_and_types(bench):
    results, out = bench
    saved = json.loads((out / "run.json").read_text())
    for key in ("e2e_p50_ms_1_client", "e2e_p99_ms_1_client", "e2e_rps_8_clients", "index_items_per_s",
                "ram_bytes_per_item"):
        assert isinstance(saved[key], NUMBER), key
    assert saved["e2e_errors"] == 0
    assert {"core", "quality_by_bits", "paper_tables", "goals", "meta"} <= saved.keys()


def test_core_rows(bench):
    results, _ = bench
    rows = results["core"]
    assert {r["method"] for r in rows} == {"routed", "direct", "faiss_flat", "numpy_scan", "exact_cosine"}
    assert {(r["bits"], r["split"]) for r in rows} == {(64, "uniform"), (256, "uniform"), (64, "skewed"),
                                                       (256, "skewed")}
    for r in rows:
        assert r["n"] == 2_000 and isinstance(r["method"], str)
        assert all(isinstance(r[k], float) and r[k] > 0 for k in ("p50_ms", "p99_ms", "qps_batch"))
    assert {r["bits"] for r in results["core_scan_ratio"]} == {64, 256}


def test_quality_rows(bench):
    results, _ = bench
    rows = results["quality_by_bits"]
    assert [r["bits"] for r in rows] == [64, 256]
    for r in rows:
        for key in ("precision_at_20_routed", "precision_at_20_direct", "precision_at_20_soft", "lsh_recall_at_20"):
            assert 0.0 <= r[key] <= 1.0, key


def test_paper_tables(bench):
    results, _ = bench
    tables = results["paper_tables"]
    assert [r["gallery"] for r in tables["table2"]] == [300, 600, 300_000]
    assert len(tables["table3"]) == 3 and tables["table3"][-1]["feature"].startswith("CNN")
    assert [r["mode"] for r in tables["table4"]] == ["routed", "direct", "soft"]
    assert tables["table4"][0]["paper_query_ms"] == 3241.0


def test_goals_are_reported_not_asserted(bench):
    results, _ = bench
    assert len(results["goals"]) == 7
    assert all(isinstance(g["met"], bool) and g["target"] for g in results["goals"])


def test_report_regenerates_from_json(bench, tmp_path):
    _, out = bench
    page = (out / "report" / "benchmarks.md").read_text()
    for heading in ("## Goals", "## 1. Search core", "## 2. End to end", "## 3. Indexing", "## 4. Quality",
                    "### Table 2", "### Table 3", "### Table 4"):
        assert heading in page
    for name in ("bench_core_latency.png", "bench_recall_latency.png", "bench_quality_bits.png"):
        assert (out / "report" / name).stat().st_size > 0
    assert main(["bench", "--report-only", str(out / "run.json"), "--report-dir", str(tmp_path)]) == 0
    assert (tmp_path / "benchmarks.md").read_text() == page


def test_handcrafted_features_are_unit_vectors(fmnist):
    images = fmnist.x_test[:5]
    for feature, dim in ((hog, 6 * 6 * 4 * 9), (intensity_histogram, 32)):
        x = feature(images)
        assert x.shape == (5, dim)
        assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_search_embedding_is_the_tail_of_search(searcher, fmnist):
    image = fmnist.x_test[0]
    probs, emb = searcher.embedder.forward_one(prepare(image, searcher.embedder.input_shape))
    full = searcher.search(image, k=10, mode="soft")
    tail = searcher.search_embedding(probs, emb, k=10, mode="soft")
    assert [h.id for h in tail.hits] == [h.id for h in full.hits]
    assert set(tail.timings_ms) == {"hash", "scan", "rerank"}
    assert list(full.timings_ms) == ["preprocess", "forward", "hash", "scan", "rerank", "total"]


def test_peak_memory_of_a_child_is_its_own_not_its_parents():
    """The indexing build runs in a child of the (large) benchmark process; its peak must not include ours."""
    ballast = np.ones(64 * 2**20)  # 512 MB, touched, in this parent
    child = subprocess.run([sys.executable, "-c", "from app.bench.timing import peak_rss_bytes; print(peak_rss_bytes())"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    assert 0 < int(child.stdout) < 256 * 2**20 < ballast.nbytes
    assert peak_rss_bytes() >= ballast.nbytes
