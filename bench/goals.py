"""The issues' goals, checked against a run's figures (reported, never asserted by tests).

Issue 4 set the search-core, HTTP and indexing goals; issue 10 (lean serving) the photo,
memory, boot and decompression-bomb ones; issue 17 those that abuse cannot stall the
service. A goal whose figure is missing (its section failed) counts as not met. The scan's
"no slower than FAISS" goal is gone: our scan is FAISS, so the NumPy-vs-FAISS comparison
stays a figure of the report instead.
"""
from __future__ import annotations

from .profile import TABLE_BITS

ROUTED_P50_GOAL_MS = 2.0      # routed search at the largest gallery, search core only
PHOTO_P50_GOAL_MS = 15.0      # a 400-px photo over HTTP, one client
PHOTO_12MP_GOAL_MS = 60.0     # a 12-megapixel JPEG over HTTP, one client
PHOTO_RPS_GOAL = 100.0        # photos, 8 clients
FASHION_P50_GOAL_MS = 5.0     # Fashion-MNIST over HTTP, one client
FASHION_RPS_GOAL = 400.0      # Fashion-MNIST, 8 clients
WORKER_RSS_GOAL_MB = 300.0    # one worker, both catalogs, after warm-up
WORKER_BOOT_GOAL_S = 3.0
LARGE_PNG_GOAL_MS = 150.0
LARGE_PNG_GROWTH_GOAL_MB = 5.0  # "no lasting growth": allocator noise, not a decoded 120 MB image
INDEX_RATE_GOAL = 3000.0      # Fashion-MNIST images/s
ADD_VS_REBUILD_GOAL = 0.1     # issue 15: adding 100 photos in place, against a full rebuild
ADDED_SIMILARITY_GOAL = 0.99  # a just-added photo searched with itself
VERSION_LAG_GOAL_S = 2.0      # every worker on the new version this soon after `index add` returns
BOMB_REFUSAL_GOAL_MS = 100.0  # issue 17: each scan-bomb upload refused within this, 4 at once
ABUSE_RATIO_GOAL = 2.0        # issue 17: a normal search under abuse, or a 10000x1 image, vs a normal search
RUN_LIMIT_S = {"full": 1800.0, "quick": 120.0}


def _goal(goal: str, target: str, measured: float | None, unit: str, met: bool | None) -> dict:
    return {"goal": goal, "target": target, "measured": measured, "unit": unit, "met": bool(met)}


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def _at_least(value: float | None, limit: float) -> bool:
    return value is not None and value >= limit


def _core_row(results: dict, method: str) -> dict | None:
    rows = [r for r in results.get("core") or [] if r["method"] == method and r["bits"] == TABLE_BITS
            and r["split"] == "uniform"]
    return max(rows, key=lambda r: r["n"]) if rows else None


def core_goals(results: dict) -> list[dict]:
    routed = _core_row(results, "routed")
    n = f"{routed['n']:,}" if routed else "largest"
    p50 = routed["p50_ms"] if routed else None
    return [_goal(f"routed search p50, {n} items, {TABLE_BITS} bits (no model)", f"<= {ROUTED_P50_GOAL_MS:g} ms",
                  p50, "ms", _at_most(p50, ROUTED_P50_GOAL_MS))]


def photo_goals(results: dict) -> list[dict]:
    p = results.get("photos") or {}
    errors = p.get("e2e_errors")
    status = p.get("large_png_status")
    uploads = sum(((p.get("large_png") or {}).get("statuses") or {}).values())
    return [
        _goal("photos: HTTP p50, 400-px photo, 1 client", f"<= {PHOTO_P50_GOAL_MS:g} ms", p.get("e2e_p50_ms_400px"),
              "ms", _at_most(p.get("e2e_p50_ms_400px"), PHOTO_P50_GOAL_MS)),
        _goal("photos: HTTP p50, 12-megapixel JPEG, 1 client", f"<= {PHOTO_12MP_GOAL_MS:g} ms",
              p.get("e2e_p50_ms_12mp"), "ms", _at_most(p.get("e2e_p50_ms_12mp"), PHOTO_12MP_GOAL_MS)),
        _goal("photos: HTTP throughput, 8 clients", f">= {PHOTO_RPS_GOAL:g} requests/s", p.get("e2e_rps_8_clients"),
              "req/s", _at_least(p.get("e2e_rps_8_clients"), PHOTO_RPS_GOAL)),
        _goal("photos: HTTP errors", "0", errors, "", errors == 0),
        _goal(f"6300x6300 PNG answered (status {status if status is not None else '—'})",
              f"<= {LARGE_PNG_GOAL_MS:g} ms", p.get("large_png_ms"), "ms", _at_most(p.get("large_png_ms"),
                                                                                     LARGE_PNG_GOAL_MS)),
        _goal(f"6300x6300 PNG: worker memory growth after {uploads} uploads", f"<= {LARGE_PNG_GROWTH_GOAL_MB:g} MB",
              p.get("large_png_rss_growth_mb"), "MB", _at_most(p.get("large_png_rss_growth_mb"),
                                                                LARGE_PNG_GROWTH_GOAL_MB)),
    ]


def serving_goals(results: dict) -> list[dict]:
    p50, rps, errors = results.get("e2e_p50_ms_1_client"), results.get("e2e_rps_8_clients"), results.get("e2e_errors")
    rss, boot = results.get("worker_rss_mb"), results.get("worker_boot_s")
    goals = [
        _goal("Fashion-MNIST: HTTP p50, 1 client", f"<= {FASHION_P50_GOAL_MS:g} ms", p50, "ms",
              _at_most(p50, FASHION_P50_GOAL_MS)),
        _goal("Fashion-MNIST: HTTP throughput, 8 clients", f">= {FASHION_RPS_GOAL:g} requests/s", rps, "req/s",
              _at_least(rps, FASHION_RPS_GOAL)),
        _goal("Fashion-MNIST: HTTP errors", "0", errors, "", errors == 0),
        _goal("one worker's resident memory, both catalogs, after warm-up", f"<= {WORKER_RSS_GOAL_MB:g} MB", rss,
              "MB", _at_most(rss, WORKER_RSS_GOAL_MB)),
        _goal("one-worker boot to /api/health", f"<= {WORKER_BOOT_GOAL_S:g} s", boot, "s",
              _at_most(boot, WORKER_BOOT_GOAL_S)),
    ]
    load = results.get("load")
    if isinstance(load, dict):
        total = (load.get("errors") or {}).get("total")
        goals.append(_goal("under load: errors (5xx, timeouts, dropped connections, wrong answers)", "0", total, "",
                           total == 0))
    return goals


def abuse_goals(results: dict) -> list[dict]:
    """Issue 17: no upload or client can stall everyone else."""
    a = results.get("abuse") or {}
    bombs, strip, greedy = a.get("bombs") or {}, a.get("strip_10000x1") or {}, a.get("greedy_client") or {}
    refused = bombs.get("statuses") and all(400 <= int(s) < 500 for s in bombs["statuses"])
    strip_status = strip.get("status")
    strip_ok = strip_status is not None and (400 <= strip_status < 500
                                             or _at_most(strip.get("ratio_to_photo"), ABUSE_RATIO_GOAL))
    limited = greedy.get("statuses") and set(greedy["statuses"]) <= {"200", "429"} and greedy.get("share_429")
    return [
        _goal(f"scan bombs ({bombs.get('clients', 4)} at once, 0.7-3.7 MB): slowest refusal (all 4xx: "
              f"{'yes' if refused else 'no'})", f"<= {BOMB_REFUSAL_GOAL_MS:g} ms", bombs.get("max_ms"), "ms",
              refused and _at_most(bombs.get("max_ms"), BOMB_REFUSAL_GOAL_MS)),
        _goal("photo search p50 during the scan bombs / alone", f"<= {ABUSE_RATIO_GOAL:g}x",
              a.get("photo_during_bombs_ratio"), "x", _at_most(a.get("photo_during_bombs_ratio"), ABUSE_RATIO_GOAL)),
        _goal(f"10000x1 JPEG p50 / photo search p50 (status {strip_status})", f"4xx, or <= {ABUSE_RATIO_GOAL:g}x",
              strip.get("ratio_to_photo"), "x", strip_ok),
        _goal(f"a client at {greedy.get('rate', 50):g} searches/s: share answered 429", "> 0 (the rest 200)",
              greedy.get("share_429"), "", limited),
        _goal("another client's search p50 meanwhile / alone", f"<= {ABUSE_RATIO_GOAL:g}x",
              a.get("other_client_ratio"), "x", _at_most(a.get("other_client_ratio"), ABUSE_RATIO_GOAL)),
    ]


def indexing_goals(results: dict) -> list[dict]:
    rate = results.get("index_items_per_s")
    return [_goal("indexing throughput, Fashion-MNIST on LiteRT", f">= {INDEX_RATE_GOAL:,.0f} images/s", rate,
                  "images/s", _at_least(rate, INDEX_RATE_GOAL))]


def living_goals(results: dict) -> list[dict]:
    living = results.get("living") or {}
    serving = living.get("serving") or {}
    first = (living.get("added_found_first") or {}).get("direct")
    n = living.get("added", "")
    return [
        _goal(f"adding {n} photos in place, against a full rebuild", f"<= {ADD_VS_REBUILD_GOAL:g}x",
              living.get("add_vs_rebuild"), "x", _at_most(living.get("add_vs_rebuild"), ADD_VS_REBUILD_GOAL)),
        _goal("a just-added photo searched with itself: found first", "1.0 of them", first, "",
              first is not None and first == 1.0),
        _goal("... and its similarity", f">= {ADDED_SIMILARITY_GOAL:g}", living.get("added_min_similarity"), "",
              _at_least(living.get("added_min_similarity"), ADDED_SIMILARITY_GOAL)),
        _goal("4 clients searching: every worker on the new version after `index add`",
              f"<= {VERSION_LAG_GOAL_S:g} s", serving.get("version_lag_s"), "s",
              _at_most(serving.get("version_lag_s"), VERSION_LAG_GOAL_S)
              and serving.get("workers_on_new_version") == serving.get("workers")),
        _goal("... answers mixing versions, and errors", "0", (serving.get("mixed_versions") or 0)
              + (serving.get("errors") or 0) if serving else None, "",
              bool(serving) and serving.get("mixed_versions") == 0 and serving.get("errors") == 0),
    ]


def run_goal(results: dict) -> dict:
    meta = results.get("meta", {})
    limit = RUN_LIMIT_S.get(meta.get("profile"), RUN_LIMIT_S["full"])
    seconds = meta.get("total_seconds")
    return _goal(f"{meta.get('profile', 'full')} run duration", f"<= {limit / 60:.0f} min", seconds, "s",
                 _at_most(seconds, limit))


def check_goals(results: dict) -> list[dict]:
    return (core_goals(results) + photo_goals(results) + serving_goals(results) + abuse_goals(results)
            + indexing_goals(results) + living_goals(results) + [run_goal(results)])
