"""Load and keep-alive checks against a running Fashion-16 server (standard library and NumPy only).

``run_load`` drives ``POST /api/search`` from several client threads, each sending bursts
of requests back to back on one keep-alive connection (then opening a new one, as real
clients churn connections), mixing good uploads (expected 200) with bad ones (expected a
4xx). It reports throughput, latency percentiles and every kind of error: a 5xx, a
timeout, a connection the server closed without saying ``Connection: close`` (the client's
next request on it failed), or an answer of the wrong kind. With the gunicorn master's
pid it also reports the workers' resident memory before and after, and whether any
worker was replaced meanwhile.

``HttpClient`` is the raw HTTP/1.1 keep-alive client underneath: bytes out exactly as
given (so malformed requests can be sent too), responses parsed strictly, and a dropped
connection told apart from one the server announced it would close.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from .servers import gunicorn_master, worker_memory

IDLE_REUSE_SECONDS = 1.0  # reconnect rather than reuse a connection idle this long (servers time them out)


class Dropped(ConnectionError):
    """The server closed the connection without a complete response."""


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]   # lower-case names; repeated headers joined with ", "
    body: bytes
    version: str = "HTTP/1.1"

    @property
    def closes(self) -> bool:
        """Whether the server announced it closes the connection after this response."""
        connection = self.headers.get("connection", "").lower()
        return "close" in connection or (self.version == "HTTP/1.0" and "keep-alive" not in connection)


def request_bytes(method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                  host: str = "localhost") -> bytes:
    """One HTTP/1.1 request; Host and Content-Length are added unless given (or the body is chunked)."""
    headers = list(headers or [])
    names = {name.lower() for name, _ in headers}
    if "host" not in names:
        headers.insert(0, ("Host", host))
    if "content-length" not in names and "transfer-encoding" not in names and (body or method in ("POST", "PUT")):
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    return head.encode("latin-1") + body


def multipart(fields: list[tuple[str, str]] = (), files: list[tuple[str, str, str, bytes]] = (),
              boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type; files are (field, filename, content type, data)."""
    boundary = boundary or uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
              f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
              for name, filename, content_type, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def search_request(image: bytes, path: str = "/api/search", filename: str = "query.png",
                   content_type: str = "image/png") -> bytes:
    body, ctype = multipart(files=[("image", filename, content_type, image)])
    return request_bytes("POST", path, body, [("Content-Type", ctype)])


class HttpClient:
    """One keep-alive HTTP/1.1 connection to ``http://HOST:PORT`` or ``unix:/PATH``, reopened when needed.

    ``source`` is the client's own address (another loopback address, 127.0.0.2, looks like
    another client to a server that limits each address).
    """

    def __init__(self, address: str, timeout: float = 30.0, source: str | None = None):
        self.address, self.timeout, self.source = address, timeout, source
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.last_used = 0.0
        self.reused = False  # whether the current request went out on a connection used before

    def connect(self) -> None:
        self.close()
        if self.address.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(self.address[5:])
        else:
            url = urlsplit(self.address)
            self.sock = socket.create_connection((url.hostname, url.port or 80), timeout=self.timeout,
                                                 source_address=(self.source, 0) if self.source else None)
        self.buffer = b""
        self.reused = False

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def send(self, raw: bytes, head: bool = False) -> Reply:
        """Send raw request bytes, return the parsed response; Dropped if the server closed without one.

        A connection the last response announced to close, or idle for a while, is replaced first.
        """
        if self.sock is None or time.monotonic() - self.last_used > IDLE_REUSE_SECONDS:
            self.connect()
        else:
            self.reused = True
        try:
            self.sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The server may have answered already (413 before the body) and closed: read that answer.
            if not self.buffer and not self._readable():
                self.close()
                raise Dropped(f"the connection closed while sending ({exc})") from None
        try:
            reply = self.read_reply(head)
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            raise Dropped(f"the connection was reset ({exc})") from None
        except Dropped:
            self.close()
            raise
        self.last_used = time.monotonic()
        if reply.closes:
            self.close()
        return reply

    def _readable(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            return False
        self.buffer += chunk
        return bool(chunk)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise Dropped(f"closed before a complete response ({len(self.buffer)} bytes)")
        data, self.buffer = self.buffer.split(marker, 1)
        return data

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise Dropped(f"closed {n - len(self.buffer)} bytes before the end of the response")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_reply(self, head: bool = False) -> Reply:
        while True:
            lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/") or not code.isdigit():
                raise ValueError(f"not an HTTP response: {lines[0]!r}")
            if int(code) >= 200 or int(code) == 101:
                break  # 1xx interim answers are skipped
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        status = int(code)
        if head or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        else:  # delimited by the connection closing
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
            headers["connection"] = "close"
        return Reply(status, reason, headers, body, version)

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self._read_until(b"\r\n"):  # trailers, then the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)


# ---------------------------------------------------------------- the load run

@dataclass
class _Tally:
    """One client thread's results, merged at the end (no shared state while running)."""

    latencies: list[float] = field(default_factory=list)     # seconds, every answered request
    good_latencies: list[float] = field(default_factory=list)
    ok: int = 0
    rejected: int = 0
    server_errors: int = 0
    timeouts: int = 0
    dropped: int = 0
    unexpected: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(what)


def _client(address: str, good: list[bytes], bad: list[bytes], deadline: float, burst: int, bad_share: float,
            timeout: float, seed: int, tally: _Tally) -> None:
    rng = np.random.default_rng(seed)
    client = HttpClient(address, timeout)
    while time.monotonic() < deadline:
        client.close()  # each burst on a fresh connection
        for _ in range(burst):
            if time.monotonic() >= deadline:
                break
            is_bad = bool(bad) and rng.random() < bad_share
            pool = bad if is_bad else good
            raw = pool[int(rng.integers(len(pool)))]
            started = time.perf_counter()
            try:
                reply = client.send(raw)
            except Dropped as exc:
                tally.dropped += 1
                tally.note(f"dropped: {exc}")
                continue
            except TimeoutError:
                tally.timeouts += 1
                tally.note("timeout")
                client.close()
                continue
            except OSError as exc:
                tally.dropped += 1
                tally.note(f"connection error: {exc}")
                client.close()
                continue
            elapsed = time.perf_counter() - started
            tally.latencies.append(elapsed)
            if reply.status >= 500:
                tally.server_errors += 1
                tally.note(f"{reply.status}: {reply.body[:120]!r}")
            elif is_bad and 400 <= reply.status < 500:
                tally.rejected += 1
            elif not is_bad and reply.status == 200:
                tally.ok += 1
                tally.good_latencies.append(elapsed)
            else:
                tally.unexpected += 1
                tally.note(f"{'bad' if is_bad else 'good'} upload got {reply.status}: {reply.body[:120]!r}")
    client.close()


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ms = np.asarray(seconds) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2),
            "max": round(float(ms.max()), 2)}


def run_load(base_url: str, good_uploads: list[bytes], bad_uploads: list[bytes], clients: int = 8,
             seconds: float = 60, burst: int = 16, master_pid: int | None = None, bad_share: float = 0.25,
             timeout: float = 30.0, seed: int = 0, path: str = "/api/search") -> dict:
    """Search load for ``seconds``; every error kind counted (all must be 0 on a healthy server).

    ``good_uploads`` and ``bad_uploads`` are image files (bytes), sent as the multipart field
    ``image``; a share ``bad_share`` of requests sends a bad one, which must get a 4xx.
    ``burst`` requests go back to back on one keep-alive connection before the client opens
    a new one. ``master_pid`` (gunicorn's master, or the serve supervisor above it) adds the
    workers' resident memory before and after.
    """
    if not good_uploads:
        raise ValueError("run_load needs at least one good upload")
    good = [search_request(image, path) for image in good_uploads]
    bad = [search_request(image, path) for image in bad_uploads]
    master = gunicorn_master(master_pid) if master_pid else None
    memory_before = worker_memory(master) if master else {}
    tallies = [_Tally() for _ in range(clients)]
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=_client, args=(base_url, good, bad, deadline, burst, bad_share, timeout,
                                                      seed + i, tallies[i]), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 10)
    elapsed = time.monotonic() - started
    memory_after = worker_memory(master) if master else {}

    def total(name: str) -> int:
        return sum(getattr(t, name) for t in tallies)

    latencies = [x for t in tallies for x in t.latencies]
    errors = {"server_5xx": total("server_errors"), "timeouts": total("timeouts"), "dropped": total("dropped"),
              "unexpected": total("unexpected")}
    report = {
        "base_url": base_url, "clients": clients, "seconds": round(elapsed, 2), "burst": burst,
        "requests": len(latencies) + errors["dropped"] + errors["timeouts"],
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "ok": total("ok"), "rejected": total("rejected"),
        "latency_ms": percentiles_ms(latencies),
        "good_latency_ms": percentiles_ms([x for t in tallies for x in t.good_latencies]),
        "errors": {**errors, "total": sum(errors.values())},
        "error_examples": [e for t in tallies for e in t.examples][:10],
    }
    if master:
        report["workers"] = {
            "before_mb": memory_before, "after_mb": memory_after,
            "replaced": sorted(set(memory_before) - set(memory_after)),
        }
    return report
