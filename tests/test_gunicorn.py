"""Real gunicorn with the shipped gunicorn.conf.py and `wsgi:app`, serving both catalogs' small stores."""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask

from app.settings import ROOT
from bench.load import multipart
from bench.servers import free_port, running, worker_pids
from conftest import reachable_folder

GUNICORN = [sys.executable, "-m", "gunicorn", "wsgi:app"]  # reads ./gunicorn.conf.py, as in production


def get_json(url: str, body: bytes | None = None, content_type: str | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if content_type else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


@pytest.fixture()
def env(store_dir) -> dict[str, str]:
    return {"FASHION16_STORE_DIR": str(store_dir)}


@pytest.mark.serving
def test_gunicorn_with_the_shipped_config_and_two_workers(tmp_path, env, query_png, query_photo):
    log = tmp_path / "gunicorn.log"
    with running(GUNICORN, {**env, "FASHION16_WORKERS": "2", "FASHION16_THREADS": "2",
                            "FASHION16_RESULTS_DIR": str(reachable_folder("saved") / "s")}, log) as server:
        health = get_json(server.url + "/api/health")
        assert [c["items"] for c in health["catalogs"]] == [400, 2000]
        photo = multipart([("k", "20")], [("image", "shoes.jpg", "image/jpeg", query_photo)])
        grey = multipart([("k", "20"), ("mode", "soft"), ("catalog", "fashion-mnist")],
                         [("image", "q.png", "image/png", query_png)])
        with ThreadPoolExecutor(4) as pool:  # concurrent requests on both catalogs
            answers = list(pool.map(lambda i: get_json(server.url + "/api/search", *(photo if i % 2 else grey)),
                                    range(12)))
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
    text = log.read_text()
    assert text.count("Booting worker") == 2  # the config file was read: its worker class is ours
    assert "Using worker: app.gunicorn_worker.ThreadWorker" in text
    for i, answer in enumerate(answers):
        catalog = "photos" if i % 2 else "fashion-mnist"
        sims = [r["similarity"] for r in answer["results"]]
        assert answer["catalog"] == catalog
        assert len(sims) == 20 and sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
        assert all(re.fullmatch(f"{server.url}/images/{catalog}/{r['id']}\\?v=[0-9a-f]{{16}}", r["image_url"])
                   for r in answer["results"])  # absolute, from the Host the client used
    served_by = {line.rsplit(" ", 1)[-1].strip("<>") for line in text.splitlines() if "POST /api/search" in line}
    assert served_by and served_by <= {str(pid) for pid in workers}  # the access log's %(p)s: our workers


@pytest.mark.serving
def test_serve_command_runs_gunicorn_without_the_proxy(tmp_path, env):
    cmd = [sys.executable, "-m", "app", "serve", "--no-proxy", "--bind", "127.0.0.1:{port}", "--workers", "1"]
    with running(cmd, {**env, "FASHION16_BIND": "", "FASHION16_THREADS": "1"}, tmp_path / "serve.log") as server:
        assert get_json(server.url + "/api/health")["default_catalog"] == "photos"


@pytest.mark.serving
def test_gunicorn_refuses_to_start_without_a_store(tmp_path):
    port = free_port()
    env = {**os.environ, "FASHION16_BIND": f"127.0.0.1:{port}", "FASHION16_WORKERS": "1",
           "FASHION16_STORE_DIR": str(tmp_path)}
    done = subprocess.run(GUNICORN, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Fashion-16 cannot start: catalog photos: no store at" in done.stderr
    assert "python -m app index build --catalog photos" in done.stderr


def test_wsgi_exposes_the_app_configured_from_the_environment(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.delitem(sys.modules, "wsgi", raising=False)
    app = importlib.import_module("wsgi").app
    assert isinstance(app, Flask) and str(app.config["SETTINGS"].store_dir) == env["FASHION16_STORE_DIR"]
    assert len(app.extensions["fashion16"].catalogs["fashion-mnist"]) == 2000
