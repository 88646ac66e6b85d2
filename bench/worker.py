"""Section 2b: one lean serving worker: boot time, resident memory, and a decompression bomb.

A gunicorn with a single worker serves both catalogs, so everything measured is that
worker's: the seconds from starting gunicorn to /api/health answering, its resident
memory (VmRSS) after a warm-up on both catalogs, and what a 6300x6300 PNG of 150 kB
costs it: the answer's time and status (413 from the header, no pixel decoded) and the
memory still held after ``large_png_requests`` of them.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from app.evaluation.metrics import summarise_ms
from app.settings import Settings

from .http_client import Client, search_body, statuses
from .profile import Profile
from .servers import running, status_mb, worker_pids
from .serving import GUNICORN, catalog_items, server_env
from .uploads import Uploads

WARMUP_PER_CATALOG = 10


def only_worker(master: int) -> int:
    workers = worker_pids(master)
    if len(workers) != 1:
        raise RuntimeError(f"expected one gunicorn worker under pid {master}, found {workers}")
    return workers[0]


def run_worker(settings: Settings, uploads: Uploads, profile: Profile) -> dict:
    warm = [search_body(b, "photos", "photo.jpg") for b in uploads.photos_400px[:WARMUP_PER_CATALOG]]
    warm += [search_body(b, "fashion-mnist", "query.png") for b in uploads.fashion[:WARMUP_PER_CATALOG]]
    bomb = search_body(uploads.large_png, "photos", "huge.png")
    with tempfile.TemporaryDirectory() as tmp, \
            running(GUNICORN, server_env(settings, workers=1), Path(tmp) / "gunicorn.log") as server:
        pid = only_worker(server.process.pid)
        booted = status_mb(pid)
        client = Client(server.port)
        warm_errors = sum(not client.post(body).ok for body in warm)
        before = status_mb(pid)
        answers = [client.post(bomb) for _ in range(profile.large_png_requests)]
        after = status_mb(pid)
        items = catalog_items(server)
    codes = statuses(answers)
    timing = summarise_ms([a.ms for a in answers])
    return {"worker_rss_mb": before, "worker_boot_s": round(server.ready_s, 2),
            "worker": {"boot_s": round(server.ready_s, 2), "rss_after_boot_mb": booted, "rss_after_warmup_mb": before,
                       "warmup_requests": len(warm), "warmup_errors": warm_errors, "catalogs": items},
            "photos": {"large_png_ms": timing["p50_ms"], "large_png_status": int(max(codes, key=codes.get)),
                       "large_png_rss_growth_mb": round(after - before, 1),
                       "large_png": {**timing, "statuses": codes, "rss_before_mb": before, "rss_after_mb": after,
                                     "bytes": len(uploads.large_png)}}}
