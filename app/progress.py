"""One progress reporter for every long job (training excepted: Keras prints its own, with its ETA)."""
from __future__ import annotations

import sys
import time
from typing import TextIO

ETA_AFTER = 2.0  # seconds of work before a time-left estimate is worth showing


def duration(seconds: float) -> str:
    """A short human duration: "45 s", "3 min 20 s", "1 h 05 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """A bar on a terminal, a line every ~10% in logs, each with the time left; ``rate`` is items/s."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, unit: str = "items"):
        self.total, self.label, self.unit = max(total, 0), label, unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self._tty = self.stream.isatty()
        self._next_log = 0.1

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the rate so far; None until there is enough to go on."""
        if self.done <= 0 or self.elapsed < ETA_AFTER or self.done >= self.total:
            return None
        return (self.total - self.done) / self.rate

    def _left(self) -> str:
        left = self.eta()
        return "" if left is None else f", about {duration(left)} left"

    def update(self, n: int = 1) -> None:
        self.done += n
        share = self.done / self.total if self.total else 1.0
        if self._tty:
            bar = "#" * int(30 * share)
            self.stream.write(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {self.rate:,.0f} {self.unit}/s"
                              f"{self._left()}\033[K")
            self.stream.flush()
        elif share >= self._next_log or self.done == self.total:
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({share:.0%}), {self.rate:,.0f} {self.unit}/s"
                              f"{self._left()}\n")
            self.stream.flush()
            while self._next_log <= share:
                self._next_log += 0.1

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
        took = f"{self.elapsed:.1f} s" if self.elapsed < 60 else duration(self.elapsed)
        self.stream.write(f"{self.label}: {self.done} {self.unit} in {took} "
                          f"({self.rate:,.0f} {self.unit}/s)\n")
        self.stream.flush()
