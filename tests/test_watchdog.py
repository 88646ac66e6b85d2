"""Issue 17: a stuck request cannot outlive FASHION16_TIMEOUT (real gunicorn, shipped config and worker).

No upload can stall the shipped app any more, so these tests serve it with one extra route
that never finishes (tests/stall_wsgi.py). The worker holding it must log which request it
was, let its other request finish, exit, and be replaced; nginx in front answers the stuck
request's client 502 in the app's shape, before its own timeout (FASHION16_TIMEOUT + 5 s).
"""
from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from serving_helpers import assert_api_error, nginx_alone, send, serve_env, wait_for

from app.serving import gunicorn_argv
from app.settings import Settings
from bench.load import Dropped, Reply, request_bytes, search_request
from bench.servers import ROOT, free_port, gunicorn_master, running, worker_pids

pytestmark = [pytest.mark.serving, pytest.mark.slow]

TIMEOUT = 2
STALL_APP = ["--pythonpath", str(ROOT / "tests"), "stall_wsgi:app"]
STALL = request_bytes("POST", "/api/_stall", b"")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 90).save(out, "PNG")
    return out.getvalue()


def in_background(address: str, raw: bytes) -> tuple[threading.Thread, dict]:
    """Send ``raw`` from a thread; the dict gets the reply (or the error) and the seconds it took."""
    outcome: dict = {}

    def go() -> None:
        started = time.monotonic()
        try:
            outcome["reply"] = send(address, raw)
        except (Dropped, OSError) as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, outcome


def test_a_stuck_request_ends_its_worker_which_is_replaced(store_dir, tmp_path):
    env = serve_env(store_dir, "{port}", 1, 2, {"FASHION16_TIMEOUT": str(TIMEOUT)})
    log = tmp_path / "gunicorn.log"
    with running([sys.executable, "-m", "gunicorn", *STALL_APP], env, log) as server:
        master = server.process.pid
        [worker] = worker_pids(master)
        stuck, outcome = in_background(server.url, STALL)
        time.sleep(0.5)
        # The worker's other thread still serves while the stuck one spins.
        assert send(server.url, search_request(png())).status == 200
        stuck.join(TIMEOUT + 30)
        assert not stuck.is_alive(), "the stuck request outlived its worker's timeout by 30 s"
        assert isinstance(outcome.get("error"), Dropped), outcome  # gunicorn alone: the connection just closes
        assert wait_for(lambda: len(worker_pids(master)) == 1 and worker_pids(master) != [worker], 30)
        assert send(server.url, search_request(png())).status == 200  # the new worker serves
    text = log.read_text()
    line = next((line for line in text.splitlines() if "Request POST /api/_stall from 127.0.0.1 has run" in line), "")
    assert f"past FASHION16_TIMEOUT ({TIMEOUT} s): this worker stops" in line, text[-2000:]
    assert f"Worker (pid:{worker}) exited with code 70" in text
    assert text.count("Booting worker") == 2


def test_behind_nginx_the_stuck_client_gets_502_in_the_apps_shape(store_dir, tmp_path):
    settings = Settings(bind=f"127.0.0.1:{free_port()}", timeout=TIMEOUT, rate_limit=0, workers=1)
    env = serve_env(store_dir, settings.port, 1, 2, {"FASHION16_TIMEOUT": str(TIMEOUT)})
    with nginx_alone(settings) as files, open(tmp_path / "gunicorn.log", "wb") as log:
        argv = gunicorn_argv(settings, f"unix:{files.gunicorn_socket}", behind_proxy=True)[:-1] + STALL_APP
        gunicorn = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://{settings.bind}"
            assert wait_for(lambda: send(url, request_bytes("GET", "/api/health")).status == 200, 60, every=0.2)
            stuck, outcome = in_background(url, STALL)
            stuck.join(TIMEOUT + 30)
            reply: Reply = outcome.get("reply")
            assert reply is not None, outcome
            assert "not available right now" in assert_api_error(reply, 502)
            assert outcome["seconds"] < settings.timeout + 5  # the worker went first, not nginx's 504
            assert wait_for(lambda: send(url, search_request(png())).status == 200, 30, every=0.2)
            assert len(worker_pids(gunicorn_master(gunicorn.pid))) == 1
        finally:
            gunicorn.terminate()
            gunicorn.wait(60)
    assert "POST /api/_stall" in Path(tmp_path / "gunicorn.log").read_text()
