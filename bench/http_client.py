"""A light loopback HTTP client for the benchmarks: pre-encoded bodies, persistent connections.

Bodies are encoded before the clock starts and each thread keeps one ``http.client``
connection, so the client spends little CPU next to the server it measures (both share
the same two cores).
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.evaluation.metrics import summarise_ms
from app.progress import Progress

from .load import multipart

BOUNDARY = "fashion16-bench-boundary"
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
WARMUP_REQUESTS = 5


def search_body(image: bytes, catalog: str | None = None, filename: str = "query") -> bytes:
    """A ready-to-send search form: the file in the ``image`` field, and the catalog when given."""
    fields = [("catalog", catalog)] if catalog else []
    return multipart(fields, [("image", filename, "application/octet-stream", image)], BOUNDARY)[0]


@dataclass
class Answer:
    ms: float
    status: int            # 0: no answer (connection error)
    data: bytes | None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.data is not None and b'"results"' in self.data


class Client:
    """One persistent connection; reconnects by itself after the server closes it."""

    def __init__(self, port: int, timeout: float = 60):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, body: bytes, path: str = "/api/search") -> Answer:
        start = time.perf_counter()
        try:
            self.conn.request("POST", path, body, HEADERS)
            response = self.conn.getresponse()
            data, status = response.read(), response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            data, status = None, 0
        return Answer(1000 * (time.perf_counter() - start), status, data)


def one_client(port: int, bodies: Sequence[bytes], requests: int, label: str) -> dict:
    """Sequential requests after a short warm-up; the server's own ``timings_ms.total`` shows what HTTP adds."""
    client = Client(port)
    for body in bodies[:WARMUP_REQUESTS]:
        client.post(body)
    latencies, server_ms, errors = [], [], 0
    progress = Progress(requests, f"http 1 client, {label}", unit="requests")
    for i in range(requests):
        answer = client.post(bodies[i % len(bodies)])
        latencies.append(answer.ms)
        if answer.ok:
            server_ms.append(json.loads(answer.data)["timings_ms"]["total"])
        else:
            errors += 1
        progress.update()
    progress.close()
    return {**summarise_ms(latencies), "errors": errors,
            "server_total_mean_ms": round(float(np.mean(server_ms)), 4) if server_ms else None}


def many_clients(port: int, bodies: Sequence[bytes], clients: int, seconds: float) -> dict:
    """``clients`` threads posting back to back for ``seconds``: requests/s, percentiles, errors."""
    results: list[list[Answer]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        client = Client(port)
        i = slot
        while time.perf_counter() < deadline:
            results[slot].append(client.post(bodies[i % len(bodies)]))
            i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    done = [a for per in results for a in per]
    ok = [a.ms for a in done if a.ok]
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": len(done),
            "rps": round(len(ok) / elapsed, 1), **summarise_ms(ok), "errors": len(done) - len(ok)}


def statuses(answers: Sequence[Answer]) -> dict[str, int]:
    """How many answers had each HTTP status ("0": none came)."""
    out: dict[str, int] = {}
    for a in answers:
        out[str(a.status)] = out.get(str(a.status), 0) + 1
    return out
