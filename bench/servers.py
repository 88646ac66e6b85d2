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


# ---------------------------------------------------------------- processes and memory (Linux /proc)

def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (all its threads' children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def gunicorn_master(pid: int) -> int | None:
    """The gunicorn master: ``pid`` itself (gunicorn alone) or its child (behind the serve supervisor)."""
    for candidate in (pid, *children(pid)):
        if any("gunicorn" in part for part in cmdline(candidate)):
            return candidate
    return None


def worker_pids(master_pid: int) -> list[int]:
    return sorted(children(master_pid))


def status_mb(pid: int | str, field: str = "VmRSS") -> float:
    """A memory line of /proc/PID/status in MB (VmRSS: resident now; VmHWM: the peak); 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def worker_memory(master_pid: int) -> dict[int, float]:
    """Resident MB of each worker of a gunicorn master."""
    return {pid: status_mb(pid) for pid in worker_pids(master_pid)}


# ---------------------------------------------------------------- running a server

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
