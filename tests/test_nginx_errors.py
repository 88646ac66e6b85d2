"""Issue 17: every error nginx answers itself comes in the app's shape, with the security headers.

Under /api/ JSON ``{"error": str}``, elsewhere the site's error page; real nginx in front of
real gunicorn (the ``proxied`` deployment), or nginx alone with a stand-in on gunicorn's
socket for the answers only a missing or silent gunicorn causes (502, 504). nginx also maps
408 (a client that stalls is reset, not answered: reset_timedout_connection), 500 and 503
(nothing in the configuration makes nginx answer them); 429 is tests/test_rate_limit.py's.
"""
from __future__ import annotations

import os
import socket
import threading

import pytest
from serving_helpers import assert_api_error, assert_page_error, nginx_alone, send

from app.proxy import ERROR_STATUSES
from app.server_errors import MESSAGES, too_large_message
from app.settings import Settings
from bench.load import request_bytes
from bench.servers import free_port

pytestmark = pytest.mark.serving

# What makes nginx answer each status itself, for a path; every one is refused before gunicorn.
REQUESTS = {
    400: lambda path: f"GET {path} HTTP/1.1\r\n\r\n".encode(),                                 # no Host
    405: lambda path: request_bytes("TRACE", path),                                          # nginx never proxies TRACE
    413: lambda path: request_bytes("POST", path, headers=[("Content-Length", "20000000")]),
    414: lambda path: request_bytes("GET", path + "?q=" + "a" * 9000),
    431: lambda path: request_bytes("GET", path, headers=[("X-Big", "b" * 9000)]),
    501: lambda path: f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".encode(),
    505: lambda path: f"GET {path} HTTP/2.0\r\nHost: x\r\n\r\n".encode(),                      # not over plain HTTP/1
}


@pytest.mark.parametrize("status", sorted(REQUESTS))
def test_nginx_answers_each_of_its_errors_in_the_apps_shape(proxied, status):
    for path in ("/api/search", "/api/health"):
        message = assert_api_error(send(proxied.base_url, REQUESTS[status](path)), status)
        assert message == (too_large_message(Settings().max_upload_mb) if status == 413 else MESSAGES[status])
    for path in ("/", "/search", "/item/fashion-mnist/1"):
        assert_page_error(send(proxied.base_url, REQUESTS[status](path)), status)


def test_nginx_own_locations_are_not_reachable_from_outside(proxied):
    """The error pages' internal location answers 404 (nginx's own), in the page shape."""
    assert_page_error(send(proxied.base_url, request_bytes("GET", "/_fashion16_error/api/400")), 404)


def test_every_status_nginx_may_answer_has_its_pages():
    assert set(REQUESTS) | {404, 408, 429, 500, 502, 503, 504} == set(ERROR_STATUSES.values())
    assert all(status in MESSAGES for status in ERROR_STATUSES.values() if status != 413)


@pytest.mark.slow
def test_a_gunicorn_that_never_answers_gets_504_in_the_apps_shape():
    """Something on gunicorn's socket accepts and never answers: nginx gives up after the timeout + 5 s."""
    settings = Settings(bind=f"127.0.0.1:{free_port()}", timeout=1, rate_limit=0)
    with nginx_alone(settings) as files:
        held: list[socket.socket] = []
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.bind(str(files.gunicorn_socket))
        os.chmod(files.gunicorn_socket, 0o777)  # nginx's workers may run as another user
        silent.listen()
        threading.Thread(target=lambda: held.extend(silent.accept()[0] for _ in range(2)), daemon=True).start()
        try:
            url = f"http://{settings.bind}"
            assert "the search took too long" in assert_api_error(send(url, request_bytes("GET", "/api/health")), 504)
            assert_page_error(send(url, request_bytes("GET", "/")), 504)
        finally:
            for conn in [*held, silent]:
                conn.close()
