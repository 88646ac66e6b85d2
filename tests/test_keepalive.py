"""Issue 11, item 2: a refused request must not silently kill its keep-alive connection (real gunicorn).

gunicorn drains at most 64 KiB of a body the app left unread, then closes the socket
although its response said "keep-alive"; the client's next request on that socket fails.
A raw keep-alive client sends each refused request, then a health check on the same
connection: either that works, or the refusal said ``Connection: close``.
"""
from __future__ import annotations

import json

import pytest

from bench.load import HttpClient, multipart, request_bytes, search_request

pytestmark = pytest.mark.serving

BIG = 100_000  # over gunicorn's 64 KiB drain


def urlencoded_fields(n: int, value: str) -> bytes:
    return "&".join(f"f{i}={value}" for i in range(n)).encode()


def refused_requests() -> dict[str, bytes]:
    many_parts, many_parts_type = multipart(fields=[(f"f{i}", "v") for i in range(5000)])
    image_then_junk, image_then_junk_type = multipart(fields=[("k", "１０")])
    return {
        "text/plain body over 64 KiB": request_bytes("POST", "/api/search", b"x" * BIG,
                                                     [("Content-Type", "text/plain")]),
        "body without a content type": request_bytes("POST", "/api/search", bytes(BIG)),
        "5,000-field multipart form": request_bytes("POST", "/api/search", many_parts,
                                                    [("Content-Type", many_parts_type)]),
        "5,000-field urlencoded form": request_bytes("POST", "/api/search", urlencoded_fields(5000, "v" * 20),
                                                     [("Content-Type", "application/x-www-form-urlencoded")]),
        "refused field, junk after the form": request_bytes(
            "POST", "/api/search", image_then_junk + b"\r\n" + b"j" * BIG, [("Content-Type", image_then_junk_type)]),
        "JSON body on the page form": request_bytes("POST", "/search", json.dumps({"x": "y" * BIG}).encode(),
                                                    [("Content-Type", "application/json")]),
        "chunked text body": request_bytes(
            "POST", "/api/search", b"%x\r\n%s\r\n0\r\n\r\n" % (BIG, b"c" * BIG),
            [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]),
    }


@pytest.mark.parametrize("name", list(refused_requests()))
def test_a_refused_request_keeps_its_connection_usable_or_says_close(direct, name):
    client = HttpClient(direct.base_url, timeout=20)
    refused = client.send(refused_requests()[name])
    assert 400 <= refused.status < 500, (refused.status, refused.body[:200])
    if refused.headers["content-type"].startswith("application/json"):
        assert set(json.loads(refused.body)) == {"error"}
    announced_close = refused.closes
    health = client.send(request_bytes("GET", "/api/health"))  # Dropped here is the bug
    assert health.status == 200
    assert client.reused != announced_close  # the health check went out on the same connection unless told not to


def test_an_upload_declared_over_the_limit_is_refused_with_connection_close(direct):
    """The body is never sent (the server must not wait for 20 MB); the answer says it closes."""
    client = HttpClient(direct.base_url, timeout=20)
    reply = client.send(request_bytes("POST", "/api/search", headers=[
        ("Content-Type", "multipart/form-data; boundary=b"), ("Content-Length", "20000000")]))
    assert reply.status == 413 and reply.closes
    assert json.loads(reply.body) == {"error": "the upload is larger than the 10 MB limit; choose a smaller image"}


def test_searches_and_refusals_share_one_connection(direct, query_images):
    client = HttpClient(direct.base_url, timeout=20)
    statuses = []
    for i in range(6):
        raw = search_request(query_images[i]) if i % 2 else refused_requests()["text/plain body over 64 KiB"]
        reply = client.send(raw)
        statuses.append(reply.status)
        assert not reply.closes
    assert statuses == [400, 200] * 3
