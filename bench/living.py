"""Section 7: living catalogs. Adding photos in place against a full rebuild, a just-added photo found first,
and every serving worker following a new version while clients search.

1. The photo catalog less ``living_add`` photos (spread over the categories) is built; those
   photos are then added with ``app.indexer.add`` (what ``python -m app index add`` runs),
   and the whole catalog rebuilt with ``app.indexer.build`` for comparison, both timed in
   this process with the same model and threads.
2. Each added photo is searched with its own file: is it first, and how similar?
3. ``python -m app serve`` (nginx, 2 workers x 2 threads) serves the catalog while 4
   clients search back to back; ``python -m app index add`` adds ``living_serve_add`` more
   photos. Every answer is checked against the version it names (its result ids and image
   hashes must all belong to that version: none may mix two), and the lag is how long after
   the add returned an answer still came from the old version.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from app.catalog import BUILTIN, catalog_store, model_path, open_catalog
from app.indexer import add, build
from app.photo_dataset import PHOTOS_ROOT
from app.photo_dataset import load_photos
from app.runtime import LiteRTModel
from app.settings import ROOT, Settings, cpu_count
from app.sources import photos_source

from .http_client import Client, search_body
from .servers import running
from .profile import Profile

CLIENTS = 4
WORKERS = 2


def spread_pick(files: list[Path], n: int) -> list[Path]:
    """``n`` files evenly spaced over a path-sorted list, so every category folder gives some."""
    return [files[int(i)] for i in np.linspace(0, len(files) - 1, n).round()] if n else []


def answers_check(answers: list[dict], snapshots: dict) -> int:
    """Answers whose results do not all belong to the version they name (ids and image hashes)."""
    mixed = 0
    for a in answers:
        snap = snapshots.get(a["version"])
        if snap is None:
            mixed += 1
            continue
        try:
            items = snap.items([r["id"] for r in a["results"]])
        except KeyError:
            mixed += 1
            continue
        if [u.rsplit("v=", 1)[-1] for u in a["urls"]] != list(items.hashes):
            mixed += 1
    return mixed


def serve_while_adding(settings: Settings, store_dir: Path, new_files: list[Path], queries: list[bytes],
                       log: Path, warm_s: float, after_s: float) -> dict:
    """4 clients search the served catalog while ``index add`` runs as a user would run it."""
    store = catalog_store(settings.with_(store_dir=store_dir), "photos")
    snapshots = {store.version(): store.snapshot()}
    env = {"FASHION16_STORE_DIR": str(store_dir), "FASHION16_CATALOGS": "photos", "FASHION16_WORKERS": str(WORKERS),
           "FASHION16_THREADS": "2", "FASHION16_BIND": "127.0.0.1:{port}",
           "FASHION16_RATE_LIMIT": "0"}  # 4 clients from one address, back to back: not what the limit is for
    answers: list[dict] = []
    errors = 0
    stop = threading.Event()
    lock = threading.Lock()
    bodies = [search_body(q, "photos", "q.jpg") for q in queries]

    def client(port: int, slot: int) -> None:
        nonlocal errors
        c, i = Client(port), slot
        while not stop.is_set():
            sent = time.perf_counter()
            answer = c.post(bodies[i % len(bodies)])
            i += CLIENTS
            with lock:
                if not answer.ok:
                    errors += 1
                    continue
                body = json.loads(answer.data)
                answers.append({"sent": sent, "done": time.perf_counter(), "version": body["catalog_version"],
                                "results": body["results"], "urls": [r["image_url"] for r in body["results"]]})

    cmd = [sys.executable, "-m", "app", "index", "add", "--catalog", "photos", *map(str, new_files)]
    with running([sys.executable, "-m", "app", "serve"], env, log, seconds=120) as server:
        threads = [threading.Thread(target=client, args=(server.port, s), daemon=True) for s in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(warm_s)
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env={**_env(), "FASHION16_STORE_DIR": str(store_dir)},
                              capture_output=True, text=True, check=False)
        returned = time.perf_counter()
        time.sleep(after_s)
        stop.set()
        for t in threads:
            t.join(60)
    if done.returncode != 0:
        raise RuntimeError(f"index add failed: {done.stderr[-2000:]}")
    snapshots[store.version()] = store.snapshot()
    new_version = max(snapshots)
    stale = [a for a in answers if a["sent"] > returned and a["version"] != new_version]
    last_new_start = min((a["sent"] for a in answers if a["version"] == new_version), default=None)
    served_by = _workers_answering(log, new_version)
    return {"clients": CLIENTS, "workers": WORKERS, "answers": len(answers), "errors": errors,
            "mixed_versions": answers_check(answers, snapshots), "versions_seen": sorted({a["version"]
                                                                                      for a in answers}),
            "add_seconds": round(returned - started, 2), "new_version": new_version,
            "version_lag_s": round(max((a["sent"] - returned for a in stale), default=0.0), 3),
            "stale_answers_after_add": len(stale),
            "first_new_answer_after_add_s": None if last_new_start is None else round(last_new_start - returned, 3),
            "workers_on_new_version": served_by}


def _workers_answering(log: Path, version: int) -> int:
    """How many distinct workers logged that they serve ``version`` (the watcher's log line)."""
    text = log.read_text(errors="replace")
    marker = f"catalog photos: now serving version {version} (worker "
    return len({line.split(marker, 1)[1] for line in text.splitlines() if marker in line})


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("FASHION16_")}


def run_living(settings: Settings, profile: Profile, tmp: Path) -> dict:
    model = LiteRTModel(model_path(settings, BUILTIN["photos"].model), threads=cpu_count())
    everything = photos_source()
    if profile.living_photos < len(everything.files):
        everything.limit(profile.living_photos)
    files = list(everything.files)
    added = spread_pick(files, profile.living_add)
    later = spread_pick([f for f in files if f not in added], profile.living_serve_add)
    base = [f for f in files if f not in added and f not in later]
    store_dir = tmp / "living"
    tmp.chmod(tmp.stat().st_mode | 0o711)  # a server started as root follows new versions as FASHION16_USER
    store = catalog_store(settings.with_(store_dir=store_dir), "photos")

    def source(chosen: list[Path]):
        src = photos_source()
        src.files = chosen
        return src

    build(store, model, source(base), "photos")
    t0 = time.perf_counter()
    report = add(store, model, added)
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rebuilt = build(store, model, source(base + added), "photos")
    rebuild_s = time.perf_counter() - t0
    catalog = open_catalog(settings.with_(store_dir=store_dir), "photos")
    ids = {p: i for p, (i, _) in catalog.snapshot.keys().items()}
    first, sims = {"routed": [], "direct": []}, []
    for f in added:
        rel = f.relative_to(PHOTOS_ROOT).as_posix()
        for mode in first:
            top = catalog.search(f.read_bytes(), k=20, mode=mode).hits[0]
            first[mode].append(top.id == ids[rel])
            if mode == "direct":
                sims.append(top.similarity)
    test = load_photos("test")
    queries = [test.read(int(i)) for i in np.linspace(0, len(test) - 1, 12).round()]
    serving = serve_while_adding(settings, store_dir, later, queries, tmp / "living-serve.log",
                                 profile.living_warm_s, profile.living_after_s)
    return {"living": {
        "catalog_items": rebuilt.items, "added": len(report.added), "add_seconds": round(add_s, 2),
        "rebuild_seconds": round(rebuild_s, 2), "add_vs_rebuild": round(add_s / rebuild_s, 4),
        "rebuild_kept_ids": rebuilt.kept, "added_found_first": {m: float(np.mean(v)) for m, v in first.items()},
        "added_min_similarity": round(float(min(sims)), 4), "serving": serving}}
