"""The shipped deployment (`python -m app serve`) as the serving tests run it.

nginx in front of gunicorn (or gunicorn alone with ``--no-proxy``), started on a free port
by ``bench.servers.running`` (the one way the tests and the benchmarks start a server),
serving the session's small Fashion-MNIST store, stopped with SIGTERM at the end: its clean
exit is part of every check.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.headers import SECURITY_HEADERS
from app.proxy import ProxyFiles, find_nginx, nginx_argv, write_proxy_files
from app.settings import Settings
from bench.load import Dropped, HttpClient, Reply, request_bytes
from bench.servers import Server, cmdline, gunicorn_master, running, worker_pids
from conftest import reachable_folder

CATALOG = "fashion-mnist"
SERVE = [sys.executable, "-m", "app", "serve"]


@dataclass
class Deployment:
    """A running `python -m app serve`: where it answers and what it is made of."""

    server: Server
    proxy: bool

    @property
    def process(self):
        return self.server.process

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def log(self) -> Path:
        return self.server.log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def gunicorn_master(self) -> int:
        master = gunicorn_master(self.process.pid)
        assert master is not None, f"no gunicorn under pid {self.process.pid}:\n{self.log_text()[-2000:]}"
        return master

    def workers(self) -> list[int]:
        return worker_pids(self.gunicorn_master())

    def gunicorn_address(self) -> str:
        """gunicorn's own address: its unix socket behind nginx, else the public one."""
        if not self.proxy:
            return self.base_url
        argv = cmdline(self.gunicorn_master())
        return argv[argv.index("--bind") + 1]

    def booted_workers(self) -> int:
        return self.log_text().count("Booting worker")


def serve_env(store_dir: Path, port: int | str, workers: int, threads: int,
              extra: dict[str, str] | None) -> dict[str, str]:
    """The deployment's environment: only the Fashion-MNIST catalog of ``store_dir``, nothing inherited.

    No rate limit unless a test sets one: the tests send hundreds of searches a second, all from 127.0.0.1.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASHION16_")}
    return {**env, "FASHION16_BIND": f"127.0.0.1:{port}", "FASHION16_STORE_DIR": str(store_dir),
            "FASHION16_CATALOGS": CATALOG, "FASHION16_DEFAULT_CATALOG": CATALOG, "FASHION16_WORKERS": str(workers),
            "FASHION16_THREADS": str(threads), "FASHION16_LOG_LEVEL": "info", "FASHION16_RATE_LIMIT": "0",
            **(extra or {})}


@contextmanager
def deployment(store_dir: Path, log: Path, proxy: bool = True, workers: int = 1, threads: int = 2,
               env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """`python -m app serve` on a free port until the block ends; then SIGTERM, and it must exit 0."""
    argv = SERVE + ([] if proxy else ["--no-proxy"])
    # not the shared default, and in a folder the workers (nobody, when the tests run as root) can reach
    env = {"FASHION16_RESULTS_DIR": str(reachable_folder("saved") / "searches"), **(env or {})}
    with running(argv, serve_env(store_dir, "{port}", workers, threads, env), log, seconds=60) as server:
        yield Deployment(server, proxy)


@contextmanager
def nginx_alone(settings: Settings) -> Iterator[ProxyFiles]:
    """nginx on the shipped configuration for ``settings`` (its bind, timeout, limits), in its own runtime
    directory, nothing yet on gunicorn's socket: the test puts there what it needs. It must stop cleanly."""
    run_dir = Path(tempfile.mkdtemp(prefix="fashion16-test-"))  # not under pytest's root-only tmp folder
    try:
        files = write_proxy_files(settings, run_dir)
        nginx = subprocess.Popen(nginx_argv(find_nginx(), files), stderr=subprocess.PIPE)
        try:
            url = f"http://{settings.bind}"

            def answers() -> bool:
                assert nginx.poll() is None, nginx.stderr.read()
                try:
                    send(url, request_bytes("GET", "/api/health"))
                except (OSError, Dropped):
                    return False
                return True
            assert wait_for(answers, 10, every=0.1)
            yield files
        finally:
            nginx.send_signal(signal.SIGQUIT)
            _, errors = nginx.communicate(timeout=40)
        assert nginx.returncode == 0, errors
        assert b"[emerg]" not in errors and b"[alert]" not in errors, errors
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def wait_for(condition: Callable[[], bool], seconds: float, every: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


# ---------------------------------------------------------------- answers in the app's shape

def send(address: str, raw: bytes, source: str | None = None) -> Reply:
    """One raw request on a fresh connection (from the loopback address ``source``, if given)."""
    return HttpClient(address, timeout=20, source=source).send(raw)


def assert_security_headers(reply: Reply) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name.lower()) == value, (name, reply.headers)


def assert_api_error(reply: Reply, status: int) -> str:
    """JSON ``{"error": str}`` with ``status`` and the security headers; returns the message."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    payload = json.loads(reply.body)
    assert list(payload) == ["error"] and isinstance(payload["error"], str) and payload["error"]
    assert_security_headers(reply)
    return payload["error"]


def assert_page_error(reply: Reply, status: int) -> None:
    """The site's error page with ``status`` and the security headers, naming no server."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("text/html")
    assert b"Back to search" in reply.body and b"nginx" not in reply.body and b"gunicorn" not in reply.body.lower()
    assert_security_headers(reply)
