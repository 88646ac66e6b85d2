"""Fashion-16's gunicorn worker: gthread, with keep-alive that tells the truth, errors in the app's shape,
a timeout that holds for every request, and no root.

Three things stock gunicorn does on its own that clients trip over (measured with real
gunicorn 27 and a raw keep-alive client, tests/test_keepalive.py):

- After a response, gunicorn drains at most 64 KiB (and 5 s) of a request body the app
  left unread; when more is left it closes the socket, although the response already said
  ``Connection: keep-alive``, and it strips any ``Connection: close`` the app sets (a
  hop-by-hop header). The client's next request on that socket then fails. The app drains
  bodies within its upload limit itself (app/web/errors.py); a body declared larger than
  that limit, or chunked (its length unknown), is marked here before the app runs, so the
  response says ``Connection: close`` and the client knows to reconnect.
- A request gunicorn refuses itself (request line too long: 414, too many or too large
  headers: 431, malformed HTTP: 400) got an HTML page without the security headers; here
  it gets the API's JSON ``{"error": ...}`` (under /api/, or when the path could not be
  read) or a short page elsewhere, with the app's security headers.
- A catalog that cannot be served stops the worker with the app's one-line reason
  instead of a traceback (gunicorn then stops: "Worker failed to boot").

And two that gunicorn does not do for gthread workers:

- Its timeout never fires for a stuck request: the heartbeat comes from the worker's main
  loop, which runs on while a request thread is stuck. Here the heartbeat is also a
  watchdog (app/request_watch.py): once a request has run past FASHION16_TIMEOUT, the worker
  logs which request it was, takes no new connection, lets its other requests finish
  (until they too are overdue, at most ``WATCHDOG_GRACE`` seconds), and exits; the master
  starts a new worker. nginx answers the stuck request's client 502 in the app's shape.
  A request stuck in C code that holds the GIL stops the main loop too, and with it the
  heartbeat: gunicorn's own timeout then kills the worker.
- Started as root, a worker serves requests as FASHION16_USER once its app is loaded
  (app/privileges.py).
"""
from __future__ import annotations

import os
import sys
import threading
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from .headers import SECURITY_HEADERS
from .request_watch import RequestWatch
from .server_errors import error_json, error_page, is_api, message
from .settings import Settings, SettingsError

WORKER_BOOT_ERROR = 3  # gunicorn's Arbiter.WORKER_BOOT_ERROR: the master stops instead of respawning
WATCHDOG_EXIT = 70     # any other status: the master logs it and starts a new worker
WATCHDOG_GRACE = 10.0  # seconds the worker's other requests get to finish once one is overdue
REASONS = {400: "Bad Request", 403: "Forbidden", 414: "URI Too Long", 417: "Expectation Failed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}

_failing = threading.local()  # the path of the request whose error is being written, per worker thread


def error_response(status: int, path: str | None) -> bytes:
    """A whole HTTP response for an error gunicorn answers: JSON under /api/ (or path unknown), else a page."""
    if path is None or is_api(path):
        body, content_type = error_json(message(status)), "application/json"
    else:
        body, content_type = error_page(status, message(status)), "text/html; charset=utf-8"
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", "Connection: close",
            f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Stands in for gunicorn.util.write_error (HTML, no security headers) in this worker's process."""
    util.write_nonblock(sock, error_response(int(status_int), getattr(_failing, "path", None)))


def body_may_stay_unread(headers: list[tuple[str, str]], limit: int) -> bool:
    """Whether the app may answer without reading the whole body: chunked, or declared over the upload limit."""
    for name, value in headers:
        if name == "TRANSFER-ENCODING":
            return True
        if name == "CONTENT-LENGTH" and value.strip().isdigit() and int(value) > limit:
            return True
    return False


def describe(req, conn) -> str:
    """A request as the watchdog logs it: method, path (no query) and the client's address."""
    client = next((value for name, value in req.headers if name == "X-FORWARDED-FOR"), None)
    if client is None:
        client = conn.client[0] if isinstance(conn.client, tuple) else "a local client"
    return f"{req.method} {req.path} from {client}"


class ThreadWorker(GunicornThreadWorker):
    """gunicorn's gthread worker with the changes above; everything else is gunicorn's."""

    def init_process(self) -> None:
        try:
            self.upload_limit = Settings.from_env().max_upload_bytes
        except SettingsError:  # gunicorn.conf.py has already refused to start on a bad value
            self.upload_limit = Settings().max_upload_bytes
        self.watch = RequestWatch(self.cfg.timeout)
        self.overdue_since: float | None = None  # when the watchdog found a request past the timeout
        util.write_error = write_error  # gunicorn writes its own error answers through this function
        super().init_process()

    def notify(self) -> None:
        """The heartbeat, beaten by the main loop about once a second; first, the watchdog."""
        overdue = self.watch.overdue()
        now = time.monotonic()
        if overdue and self.overdue_since is None:
            self.overdue_since = now
            self.alive = False  # the main loop stops taking connections and waits for the running requests
            for request in overdue:
                self.log.error("Request %s has run %.0f s, past FASHION16_TIMEOUT (%s s): this worker stops and "
                               "the master starts another", request.what, request.seconds(now), self.watch.limit_s)
        if self.overdue_since is not None:
            left = [r for r in self.watch.running() if r.seconds(now) <= self.watch.limit_s]
            if not left or now - self.overdue_since > WATCHDOG_GRACE:
                self.log.error("Worker exits now: nothing else stops its overdue request(s) (%d other(s) unfinished)",
                               len(left))
                os._exit(WATCHDOG_EXIT)  # the stuck thread cannot be stopped; leaving the process stops it
        super().notify()

    def load_wsgi(self) -> None:
        from .web.service import StartupError

        try:
            super().load_wsgi()
        except StartupError:  # the app has logged why, naming the command that fixes it
            sys.exit(WORKER_BOOT_ERROR)
        self.drop_privileges()

    def drop_privileges(self) -> None:
        """Started as root: serve as FASHION16_USER from now on (app/privileges.py), or stop saying why not."""
        from .privileges import (become, files_read_per_request, files_written_per_request, unreadable, unwritable,
                                 worker_account)
        from .warmup import warm_up

        account = worker_account(Settings.from_env())
        if account is None:
            return
        warm_up(self.wsgi)
        os.fchown(self.tmp.fileno(), account.uid, account.gid)  # the heartbeat file, which the worker touches
        become(account)
        for blocked, cannot, fix in (
                (unreadable(files_read_per_request(self.wsgi)), "read", ": make it readable to that user"),
                (unwritable(files_written_per_request(self.wsgi)), "write",
                 " (saved searches, or the admin API's photos): give that user the folder and a way to it")):
            if blocked is not None:
                self.log.error("Fashion-16 cannot start: started as root, it serves requests as %s (FASHION16_USER), "
                               "who cannot %s %s%s, or set FASHION16_USER to one who can", account.name, cannot,
                               blocked, fix)
                sys.exit(WORKER_BOOT_ERROR)
        self.log.info("Worker %s serves requests as %s:%s (FASHION16_USER)", self.pid, account.name, account.group)

    def handle_request(self, req, conn):
        if body_may_stay_unread(req.headers, self.upload_limit):
            req.must_close = True  # answered with "Connection: close"; the connection then closes
        with self.watch.watching(describe(req, conn)):
            return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc) -> None:
        source = req if req is not None else getattr(exc, "req", None)
        _failing.path = getattr(source, "path", None)
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            _failing.path = None
