"""Section 2: end to end over HTTP, as a user's browser or script sees it.

Real gunicorn with the shipped ``gunicorn.conf.py`` and ``wsgi:app`` serves the index;
a loopback client posts real Fashion-MNIST test images as PNG to ``POST /api/search``.
The client keeps one persistent ``http.client`` connection per thread and sends
pre-encoded bodies, so it spends little CPU next to the server it measures.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ROOT
from ..progress import Progress
from ..web.imaging import png_bytes
from ..evaluate import summarise_ms
from .timing import rss_bytes

BOUNDARY = "fashion16-bench-boundary"
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
READY_SECONDS = 300.0  # workers load TensorFlow and the index before the first answer
WARMUP_REQUESTS = 10


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen


def multipart_body(image: np.ndarray) -> bytes:
    """A ready-to-send form with the image as PNG in the ``image`` field."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"query.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    return head + png_bytes(image) + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_processes(pid: int) -> list[int]:
    """The gunicorn master and its workers (Linux /proc), for their resident memory."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(c) for c in children)]


def wait_ready(server: Server, log: Path, seconds: float = READY_SECONDS) -> None:
    """Poll the health endpoint until a worker answers; a server that dies shows its log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"gunicorn did not answer /api/health within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def gunicorn(model: Path, index: Path) -> Iterator[Server]:
    """The shipped server config on a free loopback port, serving ``model`` and ``index``; stopped on exit."""
    env = {**os.environ, "FASHION16_MODEL": str(model), "FASHION16_INDEX": str(index)}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gunicorn.log"
        port = free_port()
        cmd = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
               "wsgi:app"]
        with open(log, "wb") as out:
            server = Server(port, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        try:
            wait_ready(server, log)
            yield server
        finally:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


class Client:
    """One persistent connection; reconnects by itself after the server closes it."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, body: bytes) -> tuple[float, bytes | None]:
        """Milliseconds and the response body (None for an error of any kind)."""
        start = time.perf_counter()
        try:
            self.conn.request("POST", "/api/search", body, HEADERS)
            response = self.conn.getresponse()
            data = response.read()
            ok = response.status == 200 and b'"results"' in data
        except (OSError, http.client.HTTPException):
            self.conn.close()
            data, ok = None, False
        return 1000 * (time.perf_counter() - start), data if ok else None


def one_client(port: int, bodies: list[bytes], requests: int) -> dict:
    """Sequential requests; the server's own ``timings_ms.total`` shows what HTTP adds on top."""
    client = Client(port)
    for body in bodies[:WARMUP_REQUESTS]:
        client.post(body)
    latencies, server_ms, errors = [], [], 0
    progress = Progress(requests, "http 1 client", unit="requests")
    for i in range(requests):
        ms, data = client.post(bodies[i % len(bodies)])
        latencies.append(ms)
        if data is None:
            errors += 1
        else:
            server_ms.append(json.loads(data)["timings_ms"]["total"])
        progress.update()
    progress.close()
    return {**summarise_ms(latencies), "errors": errors, "server_total_mean_ms": round(float(np.mean(server_ms)), 4)
            if server_ms else None}


def many_clients(port: int, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """``clients`` threads posting back to back for ``seconds``: requests/s, percentiles, errors."""
    results: list[list[tuple[float, bool]]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        client = Client(port)
        i = slot
        while time.perf_counter() < deadline:
            ms, data = client.post(bodies[i % len(bodies)])
            results[slot].append((ms, data is not None))
            i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    done = [r for per in results for r in per]
    ok = [ms for ms, good in done if good]
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": len(done),
            "rps": round(len(ok) / elapsed, 1), **summarise_ms(ok), "errors": len(done) - len(ok)}


def run_e2e(model: Path, index: Path, images: np.ndarray, requests: int, clients: int, seconds: float) -> dict:
    """Start the server, measure one client then ``clients`` concurrent ones, and stop it."""
    bodies = [multipart_body(img) for img in images]
    with gunicorn(model, index) as server:
        single = one_client(server.port, bodies, requests)
        print(f"http {clients} clients: {seconds:.0f} s ...", file=sys.stderr, flush=True)
        concurrent = many_clients(server.port, bodies, clients, seconds)
        pids = server_processes(server.process.pid)
        memory = sum(rss_bytes(pid) for pid in pids)
    return {"e2e_p50_ms_1_client": single["p50_ms"], "e2e_p99_ms_1_client": single["p99_ms"],
            "e2e_rps_8_clients": concurrent["rps"], "e2e_errors": single["errors"] + concurrent["errors"],
            "e2e": {"one_client": single, "concurrent": concurrent, "server_processes": len(pids),
                    "server_rss_bytes": memory, "index": str(index),
                    "body_bytes_mean": int(np.mean([len(b) for b in bodies]))}}
