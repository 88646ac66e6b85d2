"""Starting the real server for a measurement or a test: a free loopback port, readiness, a clean stop.

One home for this, used by the benchmarks and the test-suite alike.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 120.0


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen
    log: Path
    ready_s: float | None = None  # seconds from start to the first healthy answer (set by ``running``)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers), from Linux /proc."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_ready(server: Server, seconds: float = READY_SECONDS) -> float:
    """Poll /api/health until it answers 200; returns the seconds waited. A server that dies shows its log."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.process.returncode}:\n"
                               f"{server.log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return time.monotonic() - start
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /api/health within {seconds:.0f} s:\n"
                       f"{server.log.read_text()[-3000:]}")


def stop(server: Server, timeout: float = 60) -> int:
    """SIGTERM, then wait; a server that hangs is killed and that is an error."""
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise


@contextmanager
def running(cmd: Sequence[str], env: dict[str, str], log: Path, port: int | None = None,
            seconds: float = READY_SECONDS) -> Iterator[Server]:
    """Run ``cmd`` from the repository root (``{port}`` in it or in ``env`` becomes the port) until ready.

    FASHION16_BIND is set to the port; the server is stopped on exit and must exit cleanly.
    """
    port = port or free_port()
    env = {**os.environ, "FASHION16_BIND": f"127.0.0.1:{port}", "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    env = {k: v.replace("{port}", str(port)) for k, v in env.items()}
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Server(port, process, log)
    try:
        server = replace(server, ready_s=wait_ready(server, seconds))
        yield server
    finally:
        code = stop(server)
    if code != 0:
        raise RuntimeError(f"the server exited with status {code}:\n{log.read_text()[-3000:]}")
