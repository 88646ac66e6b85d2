"""Side-by-side ratios from one run: on a shared machine absolute times wander with the
neighbours' load, but two figures measured in the same run, under the same noise, keep
their proportion. The report shows these beside the absolutes.
"""
from __future__ import annotations


def _ratio(a: float | None, b: float | None, places: int = 2) -> float | None:
    return round(a / b, places) if a and b else None


def side_by_side(results: dict) -> dict:
    photos, forward = results.get("photos") or {}, results.get("forward_ms") or {}
    scan = [r for r in results.get("core_scan_ratio") or [] if r["bits"] == 256]
    largest_scan = max(scan, key=lambda r: r["n"]) if scan else {}
    one = (results.get("e2e") or {}).get("one_client") or {}
    photo_one = photos.get("one_client_400px") or {}
    return {
        "keras_over_litert_photos": (forward.get("photos") or {}).get("keras_over_litert"),
        "keras_over_litert_fashion16": (forward.get("fashion16") or {}).get("keras_over_litert"),
        "photo_12mp_over_400px_p50": _ratio(photos.get("e2e_p50_ms_12mp"), photos.get("e2e_p50_ms_400px")),
        "photos_over_fashion_p50": _ratio(photos.get("e2e_p50_ms_400px"), results.get("e2e_p50_ms_1_client")),
        "fashion_http_over_server_mean": _ratio(one.get("mean_ms"), one.get("server_total_mean_ms")),
        "photos_http_over_server_mean": _ratio(photo_one.get("mean_ms"), photo_one.get("server_total_mean_ms")),
        "photos_400px_p50_over_litert_forward": _ratio(photos.get("e2e_p50_ms_400px"),
                                                      (forward.get("photos") or {}).get("litert_1_thread")),
        "numpy_over_faiss_scan_largest": largest_scan.get("numpy_vs_faiss"),
    }
