"""bench/load.py: a short load run against the real deployment, and its error counting against bad servers."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from bench.load import run_load

REPORT_KEYS = {"requests", "requests_per_s", "ok", "rejected", "latency_ms", "good_latency_ms", "errors", "workers"}


@pytest.mark.serving
def test_a_short_load_run_reports_throughput_latency_and_worker_memory(proxied, query_images):
    report = run_load(proxied.base_url, query_images, [b"", b"GIF89a broken"], clients=2, seconds=1.5, burst=4,
                      master_pid=proxied.process.pid)
    assert REPORT_KEYS <= set(report)
    assert report["errors"]["total"] == 0, report
    assert report["ok"] > 0 and report["rejected"] > 0 and report["requests"] == report["ok"] + report["rejected"]
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    workers = report["workers"]
    assert list(workers["before_mb"]) == proxied.workers() and all(mb > 10 for mb in workers["after_mb"].values())
    assert workers["replaced"] == []


def serve_badly(answer: bytes | None) -> Iterator[str]:
    """A TCP server answering every request with ``answer``, or closing without one (None), on keep-alive."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if answer is None:
                    return  # close without a word
                conn.sendall(answer)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


@pytest.mark.parametrize("answer, counted", [
    (None, "dropped"),
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}", "server_5xx"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", None),
])
def test_every_kind_of_failure_is_counted_as_an_error(answer, counted):
    for url in serve_badly(answer):
        report = run_load(url, [b"good"], [b"bad"], clients=2, seconds=0.5, burst=4, bad_share=0.5)
    errors = report["errors"]
    if counted is None:  # 200 to a bad upload is wrong too
        assert errors["unexpected"] > 0 and errors["total"] == errors["unexpected"]
    else:
        assert errors[counted] > 0 and errors["total"] == errors[counted], errors
