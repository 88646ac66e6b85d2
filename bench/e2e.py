"""Section 2: end to end over HTTP, as a user's browser or script sees it, both catalogs.

Real gunicorn with the shipped config (one worker per CPU, FASHION16_* settings) serves
the photo and Fashion-MNIST catalogs. A loopback client posts, over persistent
connections: Fashion-MNIST test images as PNG (catalog=fashion-mnist), then 400-px test
photos as JPEG and a 12-megapixel phone photo (catalog=photos): one client in sequence,
then ``clients`` at once.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from app.settings import Settings

from .http_client import many_clients, one_client, search_body
from .profile import Profile
from .servers import running, worker_pids
from .serving import GUNICORN, catalog_items, server_env
from .timing import rss_bytes
from .uploads import Uploads


def fashion_figures(port: int, bodies: list[bytes], profile: Profile) -> dict:
    single = one_client(port, bodies, profile.http_requests, "fashion-mnist")
    print(f"http {profile.http_clients} clients, fashion-mnist: {profile.http_seconds:.0f} s ...", file=sys.stderr)
    concurrent = many_clients(port, bodies, profile.http_clients, profile.http_seconds)
    return {"e2e_p50_ms_1_client": single["p50_ms"], "e2e_p99_ms_1_client": single["p99_ms"],
            "e2e_rps_8_clients": concurrent["rps"], "e2e_errors": single["errors"] + concurrent["errors"],
            "e2e": {"one_client": single, "concurrent": concurrent,
                    "body_bytes_mean": int(np.mean([len(b) for b in bodies]))}}


def photo_figures(port: int, bodies: list[bytes], body_12mp: bytes, profile: Profile) -> dict:
    single = one_client(port, bodies, profile.http_requests, "photos 400 px")
    big = one_client(port, [body_12mp], profile.requests_12mp, "photos 12 MP")
    print(f"http {profile.http_clients} clients, photos: {profile.http_seconds:.0f} s ...", file=sys.stderr)
    concurrent = many_clients(port, bodies, profile.http_clients, profile.http_seconds)
    return {"e2e_p50_ms_400px": single["p50_ms"], "e2e_p99_ms_400px": single["p99_ms"],
            "e2e_p50_ms_12mp": big["p50_ms"], "e2e_rps_8_clients": concurrent["rps"],
            "e2e_errors": single["errors"] + big["errors"] + concurrent["errors"],
            "one_client_400px": single, "one_client_12mp": big, "concurrent": concurrent}


def run_e2e(settings: Settings, uploads: Uploads, profile: Profile) -> dict:
    """Start the server, measure both catalogs, and stop it."""
    fashion = [search_body(png, "fashion-mnist", "query.png") for png in uploads.fashion]
    photos = [search_body(jpeg, "photos", "photo.jpg") for jpeg in uploads.photos_400px]
    big = search_body(uploads.jpeg_12mp, "photos", "phone.jpg")
    with tempfile.TemporaryDirectory() as tmp, \
            running(GUNICORN, server_env(settings), Path(tmp) / "gunicorn.log") as server:
        results = fashion_figures(server.port, fashion, profile)
        results["photos"] = photo_figures(server.port, photos, big, profile)
        pids = [server.process.pid, *worker_pids(server.process.pid)]
        results["e2e"].update({"server_processes": len(pids), "server_rss_bytes": sum(rss_bytes(p) for p in pids),
                               "workers": len(pids) - 1, "threads": settings.threads,
                               "catalogs": catalog_items(server), "store_dir": str(settings.store_dir)})
    results["photos"]["uploads"] = uploads.describe()
    return results
