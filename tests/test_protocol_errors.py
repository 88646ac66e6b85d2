"""Issue 11, item 7: errors answered by nginx or gunicorn themselves, in the app's shape (real servers).

Under /api/ every error is JSON ``{"error": str}`` with the app's security headers; elsewhere
a page with the same headers. Requests that nginx lets through must not meet gunicorn's own
(stricter) limits, which answer with gunicorn's HTML.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from serving_helpers import assert_api_error, assert_page_error, send, wait_for

from app.proxy import find_nginx, nginx_argv, write_proxy_files
from app.settings import Settings
from bench.load import Dropped, request_bytes
from bench.servers import free_port

pytestmark = pytest.mark.serving


LONG_QUERY = "?q=" + "a" * 9000                                    # over nginx's 8 kB line buffer
BIG_HEADER = [("X-Big", "b" * 9000)]                               # over nginx's 8 kB line buffer
MANY_HEADERS = [(f"X-Field-{i}", "v") for i in range(100)]          # gunicorn alone allows 50
LINE_5K = "?q=" + "a" * 5000                                        # gunicorn alone allows 4,094


@pytest.mark.parametrize("path", ["/api/search", "/api/health", "/api/nope"])
def test_nginx_answers_its_own_errors_as_json_under_api(proxied, path):
    url = proxied.base_url
    assert_api_error(send(url, request_bytes("GET", path + LONG_QUERY)), 414)
    assert_api_error(send(url, request_bytes("GET", path, headers=BIG_HEADER)), 431)
    assert_api_error(send(url, f"GET {path} HTTP/1.1\r\n\r\n".encode()), 400)  # no Host
    too_large = send(url, request_bytes("POST", path, headers=[("Content-Length", "20000000")]))
    assert assert_api_error(too_large, 413) == "the upload is larger than the 10 MB limit; choose a smaller image"
    assert too_large.closes


@pytest.mark.parametrize("path", ["/", "/search", "/item/fashion-mnist/1"])
def test_nginx_answers_its_own_errors_as_pages_elsewhere(proxied, path):
    assert_page_error(send(proxied.base_url, request_bytes("GET", path + LONG_QUERY)), 414)
    assert_page_error(send(proxied.base_url, request_bytes("GET", path, headers=BIG_HEADER)), 431)


def test_what_nginx_lets_through_gunicorn_accepts(proxied):
    """100 header fields and a 5 kB request line are fine for nginx; gunicorn's own limits must not refuse them."""
    for raw in (request_bytes("GET", "/api/health", headers=MANY_HEADERS), request_bytes("GET", "/api/health" + LINE_5K)):
        reply = send(proxied.base_url, raw)
        assert reply.status == 200 and json.loads(reply.body)["status"] == "ok"


def test_the_apps_own_errors_pass_through_nginx_untouched(proxied):
    reply = send(proxied.base_url, request_bytes("POST", "/api/search", b"x", [("Content-Type", "text/plain")]))
    assert assert_api_error(reply, 400).startswith("no image was uploaded")
    assert_api_error(send(proxied.base_url, request_bytes("GET", "/api/nope")), 404)


@pytest.mark.parametrize("path", ["/api/search", "/api/health"])
def test_gunicorn_alone_answers_its_own_errors_as_json_under_api(direct, path):
    url = direct.base_url
    assert_api_error(send(url, request_bytes("GET", path + LINE_5K)), 414)
    assert_api_error(send(url, request_bytes("GET", path, headers=MANY_HEADERS)), 431)
    assert_api_error(send(url, request_bytes("GET", path, headers=[("Bad Name", "x")])), 400)
    assert_api_error(send(url, f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"
                          .encode()), 400)


def test_gunicorn_alone_answers_pages_where_it_read_the_path_and_json_where_it_could_not(direct):
    """A malformed request to / whose path gunicorn read gets a page; a line too long to read a path from gets
    JSON (gunicorn refuses it before the path is known), always with the security headers."""
    duplicated_length = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"
    assert_page_error(send(direct.base_url, duplicated_length), 400)
    assert_api_error(send(direct.base_url, request_bytes("GET", "/" + LINE_5K)), 414)


def unprivileged(argv: list[str], run_dir: Path) -> list[str]:
    """As root, run as "nobody" instead (the shipped configuration must work for a non-root user, as in the image)."""
    if os.geteuid() != 0:
        return argv
    nobody = pwd.getpwnam("nobody")
    config = run_dir / "nginx.conf"
    config.write_text(re.sub(r"(?m)^user .*;$", "", config.read_text()))  # the line serve adds only for root
    for path in [run_dir, *run_dir.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *argv]


def test_nginx_without_gunicorn_answers_502_in_the_apps_shape():
    """nginx alone on the shipped configuration, as a non-root user, nothing on gunicorn's socket: what clients
    see while gunicorn restarts. Everything nginx writes stays in its runtime directory."""
    run_dir = Path(tempfile.mkdtemp(prefix="fashion16-test-"))  # not under pytest's root-only tmp folder
    port = free_port()
    try:
        files = write_proxy_files(Settings(bind=f"127.0.0.1:{port}"), run_dir)
        nginx = subprocess.Popen(unprivileged(nginx_argv(find_nginx(), files), run_dir), stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 10
            while True:
                try:
                    reply = send(url, request_bytes("GET", "/api/health"))
                    break
                except (OSError, Dropped):
                    assert time.monotonic() < deadline and nginx.poll() is None, nginx.stderr.read()
                    time.sleep(0.1)
            assert "the search service is not available" in assert_api_error(reply, 502)
            assert_api_error(send(url, request_bytes("POST", "/api/search", b"x", [("Content-Type", "text/plain")])),
                             502)
            assert_page_error(send(url, request_bytes("GET", "/")), 502)
            pid = int((run_dir / "nginx.pid").read_text())
            assert os.stat(f"/proc/{pid}").st_uid == os.stat(run_dir).st_uid  # its files' owner, nobody as root
            assert_api_error(send(url, request_bytes("GET", "/api/health" + LONG_QUERY)), 414)
            log = run_dir / "access.log"  # only what nginx answered without gunicorn; written after the answer
            assert wait_for(lambda: b'" 414 ' in log.read_bytes(), 5), log.read_bytes()[:2000]
            assert b'" 502 ' not in log.read_bytes()
        finally:
            nginx.send_signal(signal.SIGQUIT)
            _, errors = nginx.communicate(timeout=20)
        assert nginx.returncode == 0, errors
        assert b"[emerg]" not in errors and b"[alert]" not in errors, errors
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
