"""Saved searches: the SQLite store behind results addresses, and the address working on every worker."""
from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from app.saved_searches import Expired, SavedSearch, SavedSearches
from app.settings import Settings, SettingsError
from bench.load import multipart
from conftest import reachable_folder
from serving_helpers import deployment

HOUR = 3600.0
ROOT = Path(__file__).resolve().parent.parent


def search(n: int = 0, thumbnail: bytes = b"\xff\xd8 a small jpeg", dim: int = 256) -> SavedSearch:
    rng = np.random.default_rng(n)
    return SavedSearch("photos", "ab" * 32, rng.random(10, np.float32), rng.random(dim, np.float32), thumbnail,
                       "image/jpeg", None, "0.1,0.2,0.5,0.5", {"decode": 1.5, "forward": 9.0})


def test_a_saved_search_comes_back_as_it_was(tmp_path):
    saved = SavedSearches(tmp_path / "s", 24 * HOUR, 10 * 2**20)
    original = search(1)
    search_id = saved.save(original)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", search_id)
    back = saved.get(search_id)
    np.testing.assert_array_equal(back.probabilities, original.probabilities)
    np.testing.assert_array_equal(back.embedding, original.embedding)
    assert (back.catalog, back.model_sha256, back.thumbnail, back.thumbnail_type, back.box, back.timings_ms) == (
        "photos", "ab" * 32, original.thumbnail, "image/jpeg", "0.1,0.2,0.5,0.5", {"decode": 1.5, "forward": 9.0})
    assert back.id == search_id and saved.count() == 1
    assert len({saved.save(search(i)) for i in range(20)}) == 20  # ids never repeat
    with sqlite3.connect(saved.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == "0o700"  # thumbnails of people's photos: this user only


def test_searches_expire_after_their_time(tmp_path):
    saved = SavedSearches(tmp_path, 24 * HOUR, 10 * 2**20)
    made = 1_000_000.0
    search_id = saved.save(search(), now=made)
    assert saved.get(search_id, now=made + 23.9 * HOUR).id == search_id
    with pytest.raises(Expired):
        saved.get(search_id, now=made + 24.1 * HOUR)
    saved.save(search(2), now=made + 25 * HOUR)  # each save drops what has expired
    with pytest.raises(KeyError):
        saved.get(search_id, now=made + 25 * HOUR)
    for bad in ("", "../../etc/passwd", "x" * 16 + "'", "A" * 15):
        with pytest.raises(KeyError):
            saved.get(bad)


def test_the_oldest_go_first_when_the_store_is_full(tmp_path):
    thumbnail = b"x" * 20_000
    saved = SavedSearches(tmp_path, 24 * HOUR, 200_000)
    ids = [saved.save(search(i, thumbnail), now=1000.0 + i) for i in range(30)]
    assert saved.total_bytes() <= 200_000
    kept = [i for i in ids if _exists(saved, i)]
    assert kept == ids[-len(kept):] and 5 <= len(kept) < 10  # a run of the newest, within the size limit


def _exists(saved: SavedSearches, search_id: str) -> bool:
    try:
        saved.get(search_id, now=1100.0)
    except KeyError:
        return False
    return True


def test_two_connections_see_each_others_searches(tmp_path):
    """Every gunicorn worker opens the same database file: what one saves, another reads."""
    one, two = SavedSearches(tmp_path, HOUR, 2**20), SavedSearches(tmp_path, HOUR, 2**20)
    assert two.get(one.save(search(3))).catalog == "photos"


OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from app.saved_searches import SavedSearches
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
SavedSearches(folder, 3600, 2**20)
"""


def test_workers_opening_a_new_database_at_the_same_moment_all_start(tmp_path):
    """Every gunicorn worker opens the database as it boots; on a new folder SQLite told one of two workers
    "database is locked" at once (no timeout), and serve stopped (CI, stop 20). Eight processes, released
    together on fresh folders, must all open it."""
    for trial in range(6):
        folder, go = tmp_path / f"s{trial}", tmp_path / f"go{trial}"
        processes = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(folder), str(go)],
                                      cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(8)]
        time.sleep(1.5)  # all of them imported and waiting
        go.touch()
        errors = [p.communicate(timeout=60)[1] for p in processes if p.wait(timeout=60) != 0]
        assert not errors, f"trial {trial}: {len(errors)} of 8 could not open it:\n{errors[0][-800:]}"
        with sqlite3.connect(folder / "searches.sqlite3") as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("SELECT COUNT(*) FROM searches").fetchone()[0] == 0


def test_a_folder_of_another_user_is_refused(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to give the folder to another user")
    folder = tmp_path / "theirs"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    with pytest.raises(OSError, match="belongs to another user; set FASHION16_RESULTS_DIR"):
        SavedSearches(folder, HOUR, 2**20)


def test_settings_of_saved_searches(tmp_path):
    s = Settings.from_env({"FASHION16_RESULTS": "off", "FASHION16_RESULTS_DIR": str(tmp_path),
                           "FASHION16_RESULTS_TTL_HOURS": "0.5", "FASHION16_RESULTS_MAX_MB": "20"})
    assert not s.results and s.results_dir == tmp_path and s.results_ttl_hours == 0.5 and s.results_max_mb == 20
    default = Settings.from_env({})
    assert default.results and default.results_ttl_hours == 24 and default.results_max_mb == 200
    assert default.results_dir.name == f"fashion16-results-{os.getuid()}"
    for name, value in (("FASHION16_RESULTS_TTL_HOURS", "0"), ("FASHION16_RESULTS_MAX_MB", "lots"),
                        ("FASHION16_RESULTS", "maybe")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value})


def test_an_unusable_folder_stops_the_app_with_one_line(settings, tmp_path, caplog):
    from app import create_app
    from app.web.service import StartupError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StartupError, match="saved searches cannot be kept: cannot create the saved-searches folder"):
        create_app(settings.with_(results_dir=blocker / "results"), {"TESTING": True})


def request(base: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request on a connection of its own (so the workers share them out)."""
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_results_address_works_on_every_worker_behind_nginx(store_dir, tmp_path, query_images):
    """Through the shipped deployment (nginx, two gunicorn workers): the saved search is found whichever worker
    answers, and its URLs are absolute on the address the client used (nginx passes Host and its own scheme)."""
    env = {"FASHION16_RESULTS_DIR": str(reachable_folder("saved") / "searches"), "FASHION16_ACCESS_LOG": "-"}
    with deployment(store_dir, tmp_path / "serve.log", workers=2, env=env) as served:
        body, content_type = multipart([("save", "1")], [("image", "q.png", "image/png", query_images[0])])
        status, first = request(served.base_url, "POST", "/api/search", body,
                                {"Content-Type": content_type, "X-Forwarded-Proto": "https"})
        assert status == 200 and first["results_url"] == f"{served.base_url}/results/{first['query_id']}"
        assert first["results"][0]["image_url"].startswith(f"{served.base_url}/images/fashion-mnist/")
        workers = served.workers()
        answers, answered_by = [], set()
        while len(answered_by) < 2 and len(answers) < 200:  # which worker takes a connection is the kernel's choice
            answers += [request(served.base_url, "GET", f"/api/queries/{first['query_id']}") for _ in range(8)]
            answered_by = {line.rsplit(" ", 1)[-1].strip("<>") for line in served.log_text().splitlines()
                           if "GET /api/queries/" in line}
    assert all(status == 200 and [r["id"] for r in a["results"]] == [r["id"] for r in first["results"]]
               for status, a in answers)
    assert answered_by == {str(pid) for pid in workers} and len(workers) == 2  # both workers found it
