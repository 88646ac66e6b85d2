"""One progress reporter for every long job (training excepted: Keras prints its own)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A bar on a terminal, a line every ~10% in logs; ``rate`` is items/s for the summary."""

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

    def update(self, n: int = 1) -> None:
        self.done += n
        share = self.done / self.total if self.total else 1.0
        if self._tty:
            bar = "#" * int(30 * share)
            self.stream.write(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {self.rate:,.0f} {self.unit}/s")
            self.stream.flush()
        elif share >= self._next_log or self.done == self.total:
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({share:.0%}), {self.rate:,.0f} {self.unit}/s\n")
            self.stream.flush()
            while self._next_log <= share:
                self._next_log += 0.1

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
        self.stream.write(f"{self.label}: {self.done} {self.unit} in {self.elapsed:.1f} s "
                          f"({self.rate:,.0f} {self.unit}/s)\n")
        self.stream.flush()
