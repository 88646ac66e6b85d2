"""Section 2d (issue 17): abuse cannot stall the service, measured on `python -m app serve` (nginx in front).

Rate limit off: a 400-px photo search from one client alone (the baseline), then the same
while four clients each send scan-bomb JPEGs (0.7 and 3.7 MB, bench/hostile.py) as fast as
the shipped rate limit would let one address (10 a second), with every bomb's answer time
and status; then a 10000x1 JPEG, searched like a photo. With the shipped rate limit
(FASHION16_RATE_LIMIT, FASHION16_RATE_BURST): one client (127.0.0.1) sending 50 searches/s
whatever the answers take, and another (127.0.0.2) searching at half the limit, against
that second client alone. Latencies are whole HTTP requests as the clients see them.
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from app.evaluation.metrics import summarise_ms
from app.settings import Settings

from .hostile import scan_bomb, strip_jpeg
from .load import Dropped, HttpClient, search_request
from .profile import Profile
from .servers import running
from .serving import server_env
from .uploads import Uploads

SERVE = [sys.executable, "-m", "app", "serve"]
BOMB_BYTES = (700_000, 3_700_000)
BOMB_CLIENTS = 4
GREEDY_RATE = 50.0      # searches/s of the client the rate limit is for, sent whatever the answers take
GREEDY_CONNECTIONS = 4  # ... over this many connections at once
WARMUP = 5


def timed(client: HttpClient, raw: bytes) -> tuple[float, int]:
    """(ms, status) of one request; status 0 when no answer came."""
    started = time.perf_counter()
    try:
        status = client.send(raw).status
    except (Dropped, OSError):
        client.close()
        status = 0
    return 1000 * (time.perf_counter() - started), status


def in_sequence(url: str, bodies: list[bytes], until: Callable[[], bool], source: str | None = None) -> list:
    """Requests back to back on one keep-alive connection until ``until()``: [(ms, status)]."""
    client = HttpClient(url, timeout=120, source=source)
    answers, i = [], 0
    while not until():
        answers.append(timed(client, bodies[i % len(bodies)]))
        i += 1
    client.close()
    return answers


def paced(url: str, bodies: list[bytes], rate: float, until: Callable[[], bool], source: str | None = None) -> list:
    """One connection sending ``rate`` requests a second (as fast as answers allow when slower): [(ms, status)]."""
    client, answers = HttpClient(url, timeout=120, source=source), []
    next_at = time.monotonic()
    while not until():
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at = max(next_at + 1 / rate, time.monotonic())  # after a slow answer, no burst to catch up
        answers.append(timed(client, bodies[len(answers) % len(bodies)]))
    client.close()
    return answers


def for_seconds(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def latency(answers: list, ok: int = 200) -> dict:
    return {**summarise_ms([ms for ms, status in answers if status == ok]),
            "statuses": dict(Counter(str(status) for _, status in answers))}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if a and b else None


def bombs_meanwhile(url: str, bombs: list[bytes], rate: float, measure: Callable[[], list]) -> tuple[list, list]:
    """``measure()``'s answers, taken while BOMB_CLIENTS clients send ``bombs`` at ``rate`` a second each."""
    stop = threading.Event()
    sent: list[list] = [[] for _ in range(BOMB_CLIENTS)]

    def bomber(slot: int) -> None:
        sent[slot] = paced(url, bombs[slot % len(bombs):] + bombs[:slot % len(bombs)], rate, stop.is_set)
    threads = [threading.Thread(target=bomber, args=(s,), daemon=True) for s in range(BOMB_CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # every bomber under way
    try:
        answers = measure()
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    return answers, [a for per in sent for a in per]


def hostile_uploads(url: str, photos: list[bytes], seconds: float, bomb_rate: float) -> dict:
    normal = [search_request(p, filename="photo.jpg", content_type="image/jpeg") for p in photos]
    warm = HttpClient(url, timeout=120)
    for body in normal[:WARMUP]:
        timed(warm, body)
    warm.close()
    alone = latency(in_sequence(url, normal, for_seconds(seconds)))
    bombs = [search_request(scan_bomb(n), filename="bomb.jpg", content_type="image/jpeg") for n in BOMB_BYTES]
    during, bombed = bombs_meanwhile(url, bombs, bomb_rate, lambda: in_sequence(url, normal, for_seconds(seconds)))
    during = latency(during)
    bomb_ms = [ms for ms, _ in bombed]
    strip = search_request(strip_jpeg(10_000, 1), filename="strip.jpg", content_type="image/jpeg")
    strips = in_sequence(url, [strip], for_seconds(seconds / 2))
    strip_status = Counter(status for _, status in strips).most_common(1)[0][0]
    strip_figures = latency(strips, ok=strip_status)
    return {
        "photo_alone": alone, "photo_during_bombs": during,
        "photo_during_bombs_ratio": ratio(during["p50_ms"], alone["p50_ms"]),
        "bombs": {"clients": BOMB_CLIENTS, "rate_per_client": bomb_rate, "bytes": list(BOMB_BYTES),
                  "sent": len(bombed), "statuses": dict(Counter(str(s) for _, s in bombed)), **summarise_ms(bomb_ms),
                  "max_ms": round(max(bomb_ms), 2) if bomb_ms else None},
        "strip_10000x1": {**strip_figures, "status": strip_status,
                          "ratio_to_photo": ratio(strip_figures["p50_ms"], alone["p50_ms"])},
    }


def rate_limited(url: str, photos: list[bytes], seconds: float, settings: Settings) -> dict:
    normal = [search_request(p, filename="photo.jpg", content_type="image/jpeg") for p in photos]
    other, polite = "127.0.0.2", settings.rate_limit / 2
    alone = latency(paced(url, normal, polite, for_seconds(seconds), source=other))
    greedy: list = []
    until = for_seconds(seconds)
    threads = [threading.Thread(target=lambda: greedy.extend(paced(url, normal[:1], GREEDY_RATE / GREEDY_CONNECTIONS,
                                                                   until)), daemon=True)
               for _ in range(GREEDY_CONNECTIONS)]
    for thread in threads:
        thread.start()
    during = latency(paced(url, normal, polite, for_seconds(seconds), source=other))
    for thread in threads:
        thread.join(seconds + 120)
    statuses = Counter(status for _, status in greedy)
    return {
        "rate_limit": settings.rate_limit, "rate_burst": settings.rate_burst,
        "greedy_client": {"rate": GREEDY_RATE, "sent": len(greedy),
                          "statuses": {str(k): v for k, v in statuses.items()},
                          "share_429": round(statuses[429] / len(greedy), 3) if greedy else None},
        "other_client_rate": polite, "other_client_alone": alone, "other_client_during": during,
        "other_client_ratio": ratio(during["p50_ms"], alone["p50_ms"]),
    }


def run_abuse(settings: Settings, uploads: Uploads, profile: Profile) -> dict:
    """Two servers, the shipped configuration: without a rate limit for the uploads, with it for the rate."""
    photos = uploads.photos_400px
    shipped = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**server_env(settings), "FASHION16_RATE_LIMIT": "0"}
        with running(SERVE, env, Path(tmp) / "serve.log") as server:
            hostile = hostile_uploads(server.url, photos, profile.abuse_seconds, shipped.rate_limit)
        env = {**server_env(settings), "FASHION16_RATE_LIMIT": f"{shipped.rate_limit:g}",
               "FASHION16_RATE_BURST": str(shipped.rate_burst)}
        with running(SERVE, env, Path(tmp) / "serve-limited.log") as server:
            rate = rate_limited(server.url, photos, profile.abuse_seconds, shipped)
    return {"abuse": {"seconds": profile.abuse_seconds, "workers": settings.workers, "threads": settings.threads,
                      **hostile, **rate}}
