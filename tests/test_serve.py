"""`python -m app serve`: nginx in front of gunicorn, supervised as one service (real processes).

The supervisor must stop cleanly on SIGTERM/SIGINT (exit 0, nothing left running, its
runtime directory gone), stop the other process when one dies (and exit non-zero), and
say in one line what to do when nginx is missing.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serving_helpers import deployment, serve_env

from bench.load import HttpClient, request_bytes
from bench.servers import ROOT, children, free_port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def process_tree(pid: int) -> list[int]:
    found = children(pid)
    return found + [p for child in found for p in process_tree(child)]


def wait_exit(process: subprocess.Popen, seconds: float = 60) -> int:
    return process.wait(timeout=seconds)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_nginx_then_gunicorn_cleanly(store_dir, tmp_path, stop):
    log = tmp_path / "serve.log"
    with deployment(store_dir, log, workers=2) as running:
        tree = process_tree(running.process.pid)
        run_dir = Path(running.gunicorn_address()[len("unix:"):]).parent
        assert run_dir.is_dir() and oct(run_dir.stat().st_mode & 0o777) == "0o700"
        assert len(tree) >= 1 + 2 + 2  # gunicorn master and 2 workers, nginx master and its workers
        running.process.send_signal(stop)
        assert wait_exit(running.process) == 0, log.read_text()[-2000:]
    assert not [pid for pid in tree if alive(pid)]
    assert not run_dir.exists()
    text = log.read_text()
    assert text.index("stopping: nginx finishes its requests") < text.index("Shutting down: Master")


@pytest.mark.parametrize("victim", ["nginx", "gunicorn"])
def test_when_one_process_dies_the_other_is_stopped_and_serve_fails(store_dir, tmp_path, victim):
    log = tmp_path / "serve.log"
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, env=serve_env(store_dir, port, 1, 1, None))
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in log.read_text() or "nginx on" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        tree = process_tree(process.pid)
        target = next(pid for pid in children(process.pid)
                      if victim in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
        os.kill(target, signal.SIGKILL)
        code = wait_exit(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code != 0
    assert f"{victim} exited with status -9; stopping" in log.read_text()
    time.sleep(1)  # gunicorn workers of a killed master notice it within their heartbeat
    assert not [pid for pid in tree if alive(pid)]


def test_without_nginx_serve_says_how_to_get_it_in_one_line(store_dir):
    env = serve_env(store_dir, free_port(), 1, 1, {"FASHION16_NGINX": "/nonexistent/nginx"})
    done = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install nginx" in lines[0] and "--no-proxy" in lines[0]


@pytest.mark.parametrize("how", ["--no-proxy", "FASHION16_PROXY=0"])
def test_no_proxy_serves_with_gunicorn_alone(store_dir, tmp_path, how):
    flag = how == "--no-proxy"
    env = None if flag else {"FASHION16_PROXY": "0"}
    with deployment(store_dir, tmp_path / "serve.log", proxy=not flag, env=env) as running:
        reply = HttpClient(running.base_url).send(request_bytes("GET", "/api/health"))
        assert reply.status == 200 and "nginx" not in reply.headers.get("server", "")
        assert running.gunicorn_master() == running.process.pid  # serve became gunicorn: no supervisor, no nginx


def test_a_taken_port_stops_serve_with_nginxs_reason(store_dir):
    """nginx cannot listen: serve stops gunicorn too and fails, and the log says why."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        env = serve_env(store_dir, taken.getsockname()[1], 1, 1, None)
        done = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Address already in use" in done.stderr and "nginx exited with status 1; stopping" in done.stderr


@pytest.mark.serving
@pytest.mark.parametrize("proxy", [True, False])
def test_sighup_replaces_the_workers_and_never_stops_the_server(store_dir, tmp_path, proxy):
    """The usual "reload" signal: new workers (which open the catalogs' latest versions), the same server."""
    import numpy as np
    from serving_helpers import wait_for

    from bench.load import search_request
    from conftest import png_bytes

    log = tmp_path / "serve.log"
    with deployment(store_dir, log, proxy=proxy, workers=2) as running:
        before = set(running.workers())
        running.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(set(running.workers()) - before) == 2 and len(running.workers()) == 2, 60), \
            log.read_text()[-2000:]
        assert running.process.poll() is None
        client = HttpClient(running.base_url)
        assert client.send(request_bytes("GET", "/api/health")).status == 200
        assert client.send(search_request(png_bytes(np.zeros((28, 28), np.uint8)))).status == 200
    if proxy:
        assert "reloading: gunicorn replaces its workers gracefully" in log.read_text()
