"""Measuring helpers shared by the sections: latency samples, throughput, resident memory.

Every loop is bounded by a count *and* a time budget, so one slow baseline (a NumPy scan
of a million codes) cannot stretch the whole run; the number of samples taken is
reported next to each figure so a reader can judge it.
"""
from __future__ import annotations

import ctypes
import gc
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .servers import status_mb

WARMUP = 3


def time_each(fn: Callable[[Any], Any], items: Sequence[Any], max_seconds: float) -> list[float]:
    """Milliseconds of ``fn(item)`` per item, after a short warm-up, until the items or the budget run out."""
    for item in items[:WARMUP]:
        fn(item)
    out: list[float] = []
    deadline = time.perf_counter() + max_seconds
    for item in items:
        start = time.perf_counter()
        fn(item)
        end = time.perf_counter()
        out.append(1000 * (end - start))
        if end > deadline:
            break
    return out


def interleaved(fns: Mapping[str, Callable[[], Any]], rounds: int, max_seconds: float) -> dict[str, list[float]]:
    """Milliseconds per call of each function, taken in turns (a, b, c, a, b, c, ...).

    Taking turns puts every contender under the same machine noise, so the ratios of one
    run mean something even on a busy machine where the absolute figures wander.
    """
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + max_seconds
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            out[name].append(1000 * (time.perf_counter() - start))
        if time.perf_counter() > deadline:
            break
    return out


def throughput(fn: Callable[[Any], Any], batches: Sequence[Any], batch_size: int, max_seconds: float) -> float:
    """Items per second of ``fn(batch)`` over whole batches (at least one), within the budget."""
    fn(batches[0])
    done, start = 0, time.perf_counter()
    for batch in batches:
        fn(batch)
        done += batch_size
        if time.perf_counter() - start > max_seconds:
            break
    return round(done / (time.perf_counter() - start), 1)


def settled_rss() -> int:
    """This process's RSS after garbage collection and handing freed heap pages back to the OS.

    Without the trim, memory freed by an earlier, larger configuration can still count as
    resident and make the next measurement's difference meaningless.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the plain RSS is the best there is
        pass
    return rss_bytes()


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process now (Linux /proc), 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """This process image's peak resident memory (Linux VmHWM).

    ``getrusage().ru_maxrss`` is not it for a child: Linux carries the peak of the process
    that forked it across exec, so a build started by the 4 GB benchmark reported 4 GB.
    """
    peak = status_mb("self", "VmHWM")
    if peak:
        return int(peak * 1024 * 1024)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
