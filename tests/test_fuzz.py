"""Fuzzing the real app under real gunicorn, behind nginx and directly: odd uploads get clear 4xx answers.

1,000+ seeded cases (tests/fuzz_uploads.py: damaged and odd images, pixel bombs, odd fields,
broken forms, wrong content types, odd paths) go to the shipped deployment twice: through
nginx, and straight to gunicorn's unix socket, each on one keep-alive connection. For every
answer: no 5xx; the security headers; under /api/ every error is JSON {"error": str}, else a
page; no decoder's or framework's wording; valid odd images are searched; no connection
closed without "Connection: close". Afterwards the same gunicorn workers are still running.
"""
from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator

import pytest
from fuzz_uploads import Case, generate
from serving_helpers import Deployment, deployment

from app.headers import SECURITY_HEADERS
from app.server_errors import is_api
from bench.load import Dropped, HttpClient, Reply

pytestmark = [pytest.mark.serving, pytest.mark.slow]

SEED = 11
CASES = 1000
INTERNAL_WORDING = ("werkzeug", "pillow", "PIL.", "traceback", "cannot identify image file", "the browser (or proxy)",
                    "was not found on the server", "not allowed for the requested url", "exceeds the capacity limit",
                    "errno", "image file is truncated", "decoder", "nginx", "gunicorn", "exception", "keyerror",
                    "valueerror", "oserror", "syntaxerror")


@pytest.fixture(scope="module")
def fuzzed(store_dir, tmp_path_factory) -> Iterator[Deployment]:
    with deployment(store_dir, tmp_path_factory.mktemp("fuzz") / "serve.log", workers=2) as running:
        yield running


def problems_of(reply: Reply, case: Case) -> list[str]:
    found = []
    if reply.status >= 500:
        found.append(f"status {reply.status}")
    if case.must_succeed and reply.status != 200:
        found.append(f"a valid image got {reply.status}: {reply.body[:200]!r}")
    found += [f"no {name} header" for name, value in SECURITY_HEADERS.items()
              if reply.headers.get(name.lower()) != value]
    if case.head or reply.status < 400:
        searched = reply.status == 200 and case.path.startswith("/api/search") and case.kind != "path"
        if searched and b'"results":[{' not in reply.body:
            found.append(f"a search answered 200 without results: {reply.body[:200]!r}")
        return found
    content_type = reply.headers.get("content-type", "")
    text = reply.body.decode("utf-8", errors="replace")
    if is_api(case.path):
        try:
            payload = json.loads(text)
        except ValueError:
            return found + [f"{reply.status} is not JSON ({content_type}): {text[:200]!r}"]
        if not (isinstance(payload, dict) and list(payload) == ["error"] and isinstance(payload["error"], str)
                and payload["error"]):
            found.append(f"{reply.status} JSON is not {{'error': str}}: {text[:200]!r}")
        else:
            text = payload["error"]
        if not content_type.startswith("application/json"):
            found.append(f"{reply.status} JSON error with Content-Type {content_type!r}")
    elif not content_type.startswith("text/html"):
        found.append(f"{reply.status} page with Content-Type {content_type!r}")
    found += [f"internal wording {word!r} in {text[:160]!r}" for word in INTERNAL_WORDING if word.lower() in text.lower()]
    return found


def test_fuzzed_requests_get_clear_answers_and_workers_survive(fuzzed, query_images):
    booted, workers = fuzzed.booted_workers(), fuzzed.workers()
    targets = {"nginx": fuzzed.base_url, "gunicorn": fuzzed.gunicorn_address()}
    clients = {name: HttpClient(address, timeout=30) for name, address in targets.items()}
    statuses = {name: collections.Counter() for name in targets}
    closes, problems, sent = collections.Counter(), [], 0
    started = time.monotonic()
    for case in generate(SEED, CASES, query_images[0]):
        for name, client in clients.items():
            sent += 1
            try:
                reply = client.send(case.raw, head=case.head)
            except Dropped as exc:
                problems.append(f"{name} {case.kind} / {case.name}: dropped without Connection: close ({exc})")
                continue
            except TimeoutError:
                problems.append(f"{name} {case.kind} / {case.name}: no answer within 30 s")
                client.close()
                continue
            statuses[name][reply.status] += 1
            closes[name] += reply.closes
            problems += [f"{name} {case.kind} / {case.name}: {p}" for p in problems_of(reply, case)]
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {sent} requests ({sent // 2} cases x nginx and gunicorn) in {elapsed:.1f} s; "
          + "; ".join(f"{name}: {dict(sorted(c.items()))}, {closes[name]} announced closes"
                      for name, c in statuses.items()))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])
    assert sent >= 2 * CASES
    assert fuzzed.workers() == workers, "a worker died and was replaced"
    assert fuzzed.booted_workers() == booted, fuzzed.log_text()[-3000:]
