"""The requests one worker is running and since when: what its watchdog reads (app/gunicorn_worker.py).

gunicorn's timeout cannot see a stuck request in a gthread worker: the heartbeat is beaten by
the worker's main loop, which goes on while a request thread is stuck (measured on main: a
3.7 MB scan-bomb JPEG held a thread for over 170 s with FASHION16_TIMEOUT at 60). So each
request thread signs in here, and the main loop looks before every heartbeat.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Running:
    what: str        # "POST /api/search from 1.2.3.4"
    started: float   # time.monotonic()

    def seconds(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


class RequestWatch:
    """Thread-safe register of running requests, with a time limit per request."""

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self._running: dict[int, Running] = {}
        self._lock = threading.Lock()

    @contextmanager
    def watching(self, what: str) -> Iterator[None]:
        """Registers the calling thread's request for as long as the block runs."""
        key = threading.get_ident()
        with self._lock:
            self._running[key] = Running(what, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(key, None)

    def running(self) -> list[Running]:
        with self._lock:
            return list(self._running.values())

    def overdue(self) -> list[Running]:
        now = time.monotonic()
        return [r for r in self.running() if r.seconds(now) > self.limit_s]
