"""The issue's speed goals, checked against a run's figures (reported, never asserted by tests).

A goal whose figure is missing (its section failed) counts as not met.
"""
from __future__ import annotations

from .profile import TABLE_BITS

ROUTED_P50_GOAL_MS = 2.0  # routed search at the largest gallery, search core only
SCAN_NOISE = 1.10        # "no slower than FAISS" allows 10% of timing noise: both run the same FAISS kernel
RUN_LIMIT_S = {"full": 1800.0, "quick": 120.0}


def _goal(goal: str, target: str, measured: float | None, unit: str, met: bool | None) -> dict:
    return {"goal": goal, "target": target, "measured": measured, "unit": unit, "met": bool(met)}


def _core_row(results: dict, method: str) -> dict | None:
    rows = [r for r in results.get("core") or [] if r["method"] == method and r["bits"] == TABLE_BITS
            and r["split"] == "uniform"]
    return max(rows, key=lambda r: r["n"]) if rows else None


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def _at_least(value: float | None, limit: float) -> bool:
    return value is not None and value >= limit


def core_goals(results: dict) -> list[dict]:
    routed = _core_row(results, "routed")
    n = f"{routed['n']:,}" if routed else "largest"
    ratios = [r for r in results.get("core_scan_ratio") or [] if r["bits"] == TABLE_BITS]
    ratio = max(ratios, key=lambda r: r["n"])["ours_vs_faiss"] if ratios else None
    p50 = routed["p50_ms"] if routed else None
    return [_goal(f"routed search p50, {n} items, {TABLE_BITS} bits (no CNN)", f"<= {ROUTED_P50_GOAL_MS:g} ms", p50, "ms",
                  _at_most(p50, ROUTED_P50_GOAL_MS)),
            _goal(f"our Hamming scan vs FAISS IndexBinaryFlat, {n} items", f"<= 1.0x (+{SCAN_NOISE - 1:.0%} noise)",
                  ratio, "x", _at_most(ratio, SCAN_NOISE))]


def serving_goals(results: dict) -> list[dict]:
    p50, rps = results.get("e2e_p50_ms_1_client"), results.get("e2e_rps_8_clients")
    errors, rate = results.get("e2e_errors"), results.get("index_items_per_s")
    return [_goal("HTTP p50, 1 client", "<= 15 ms", p50, "ms", _at_most(p50, 15.0)),
            _goal("HTTP throughput, 8 clients", ">= 150 requests/s", rps, "req/s", _at_least(rps, 150.0)),
            _goal("HTTP errors", "0", errors, "", errors == 0),
            _goal("indexing throughput", ">= 3,000 images/s", rate, "images/s", _at_least(rate, 3000.0))]


def run_goal(results: dict) -> dict:
    meta = results.get("meta", {})
    limit = RUN_LIMIT_S.get(meta.get("profile"), RUN_LIMIT_S["full"])
    seconds = meta.get("total_seconds")
    return _goal(f"{meta.get('profile', 'full')} run duration", f"<= {limit / 60:.0f} min", seconds, "s",
                 _at_most(seconds, limit))


def check_goals(results: dict) -> list[dict]:
    return core_goals(results) + serving_goals(results) + [run_goal(results)]
