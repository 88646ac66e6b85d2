"""Issue 17: searches are rate-limited per client address at nginx, answered 429 in the app's shape.

Real nginx in front of real gunicorn. A second client is another loopback address
(127.0.0.2), which nginx tells apart from 127.0.0.1 as it would two clients on the internet.
"""
from __future__ import annotations

import io
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from serving_helpers import assert_api_error, assert_page_error, deployment, send, wait_for

from app.proxy import RATE_LIMITED_PATHS, find_nginx, render, retry_after, write_proxy_files
from app.server_errors import MESSAGES
from app.settings import Settings
from bench.load import multipart, request_bytes, search_request

RATE, BURST = 1, 3   # a search a second, three at once: a quick loop of 15 must meet the limit


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 90).save(out, "PNG")
    return out.getvalue()


def page_search(image: bytes) -> bytes:
    body, content_type = multipart(files=[("image", "q.png", "image/png", image)])
    return request_bytes("POST", "/search", body, [("Content-Type", content_type)])


@pytest.fixture(scope="module")
def limited(store_dir, tmp_path_factory):
    env = {"FASHION16_RATE_LIMIT": str(RATE), "FASHION16_RATE_BURST": str(BURST)}
    with deployment(store_dir, tmp_path_factory.mktemp("limited") / "serve.log", env=env) as running:
        yield running


@pytest.mark.serving
def test_a_client_over_the_limit_gets_429_while_another_is_served(limited):
    url, image = limited.base_url, png()
    replies = [send(url, search_request(image)) for _ in range(15)]
    counts = Counter(r.status for r in replies)
    assert set(counts) == {200, 429} and counts[200] >= BURST, counts
    for reply in replies:
        if reply.status == 429:
            assert assert_api_error(reply, 429) == MESSAGES[429]
            assert reply.headers["retry-after"] == "1"
    assert "retry-after" not in next(r for r in replies if r.status == 200).headers
    # The same client's pages get the page, with Retry-After too; what is not a search is not limited.
    for raw in (page_search(image), request_bytes("GET", "/item/fashion-mnist/1")):
        reply = send(url, raw)
        assert_page_error(reply, 429)
        assert reply.headers["retry-after"] == "1"
    assert send(url, request_bytes("GET", "/api/health")).status == 200
    assert send(url, request_bytes("GET", "/images/fashion-mnist/1")).status == 200
    # Another client is served meanwhile, and the first again once its rate allows.
    assert send(url, search_request(image), source="127.0.0.2").status == 200
    assert wait_for(lambda: send(url, search_request(image)).status == 200, 5, every=0.5)


@pytest.mark.serving
def test_without_a_limit_nothing_is_refused(proxied):
    """FASHION16_RATE_LIMIT=0 (what the other serving tests run with): a quick loop is all answered."""
    image = png()
    assert Counter(send(proxied.base_url, search_request(image)).status for _ in range(30)) == {200: 30}


@pytest.mark.parametrize("rate, burst, written, retry", [(10, 20, "10r/s", 1), (2.5, 5, "150r/m", 1),
                                                          (0.2, 1, "12r/m", 5)])
def test_the_limit_is_written_as_nginx_reads_it(tmp_path, rate, burst, written, retry):
    settings = Settings(bind="127.0.0.1:8000", rate_limit=rate, rate_burst=burst)
    text = render(settings, tmp_path, tmp_path / "gunicorn.sock")
    assert f"rate={written};" in text and f"burst={burst} nodelay;" in text and retry_after(settings) == retry
    assert all(f"~{path} $binary_remote_addr;" in text for path in RATE_LIMITED_PATHS)
    nginx_accepts(settings, tmp_path)


def test_a_zero_rate_writes_no_limit(tmp_path):
    settings = Settings(bind="127.0.0.1:8000", rate_limit=0)
    text = render(settings, tmp_path, tmp_path / "gunicorn.sock")
    assert "limit_req" not in text and "Retry-After" not in text
    nginx_accepts(settings, tmp_path)


def nginx_accepts(settings: Settings, folder: Path) -> None:
    """nginx -t on the configuration as serve writes it."""
    files = write_proxy_files(settings, folder)
    done = subprocess.run([find_nginx(), "-t", "-p", f"{folder}/", "-c", str(files.config)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
