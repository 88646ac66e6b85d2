"""``python -m app serve``: nginx in front of gunicorn, supervised as one service (or gunicorn alone).

By default nginx listens on FASHION16_BIND and hands complete requests to gunicorn on a
unix socket in a private runtime directory, so slow or numerous clients wait in nginx,
never in a gunicorn thread (see deploy/nginx.conf.in and docs/deployment.md).
``--no-proxy`` (FASHION16_PROXY=0) replaces this process with gunicorn on FASHION16_BIND.

The supervisor forwards SIGTERM/SIGINT as a graceful stop (nginx first, so nothing new
arrives, then gunicorn, which finishes its requests), stops the other process when one
dies, and exits non-zero unless both stopped cleanly because it was asked to stop. SIGHUP,
the usual "reload", never stops it: it is passed on, so gunicorn replaces its workers
gracefully (new ones open the catalogs' latest versions) and nginx rereads its config.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .proxy import ProxyFiles, find_nginx, nginx_argv, write_proxy_files
from .settings import ROOT, Settings

GRACE_SECONDS = 35      # gunicorn's graceful_timeout (30 s) and a little
START_SECONDS = 60      # gunicorn creates its socket within a second or two of starting
POLL_SECONDS = 0.1
# Behind nginx, gunicorn must accept whatever nginx forwards: nginx already bounds the request
# line and each header line (8 kB) and all headers together (4 x 8 kB), but not the number of
# header fields, which gunicorn would refuse with an HTML 431 of its own.
BEHIND_PROXY_LIMITS = ["--limit-request-line", "0", "--limit-request-fields", "32768",
                       "--limit-request-field_size", "0"]


def gunicorn_argv(settings: Settings, bind: str | None = None, behind_proxy: bool = False) -> list[str]:
    """gunicorn with the shipped gunicorn.conf.py; ``bind`` overrides settings.bind (nginx's upstream socket)."""
    argv = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
            "--bind", bind or settings.bind, "--workers", str(settings.workers)]
    return argv + (BEHIND_PROXY_LIMITS if behind_proxy else []) + ["wsgi:app"]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment gunicorn.conf.py reads its settings from, with command-line overrides applied."""
    return {**os.environ, "FASHION16_BIND": settings.bind, "FASHION16_WORKERS": str(settings.workers)}


def serve(settings: Settings) -> int:
    """Serve until stopped; the exit status says whether everything stopped cleanly."""
    starting = f"Fashion-16 is starting on http://localhost:{settings.port}/ (Ctrl-C stops it)"
    if not settings.proxy:
        say(starting)
        sys.stdout.flush()
        os.execve(sys.executable, gunicorn_argv(settings), settings_env(settings))
    nginx = find_nginx(settings.nginx)  # FileNotFoundError saying how to install it, or to use --no-proxy
    say(starting)
    run_dir = Path(tempfile.mkdtemp(prefix="fashion16-"))  # mode 0700: only this user reaches the socket
    try:
        return Supervisor(settings, write_proxy_files(settings, run_dir), nginx).run()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def say(message: str) -> None:
    print(f"[fashion16 serve] {message}", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the supervisor dies (Linux), so nothing is left orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Runs gunicorn, then nginx once gunicorn's socket exists, until a stop signal or a death."""

    def __init__(self, settings: Settings, files: ProxyFiles, nginx: str):
        self.settings, self.files, self.nginx = settings, files, nginx
        self.stops = 0  # stop signals received; a second one makes the shutdown quick
        self.hangups = 0  # SIGHUPs received and not yet passed on
        self.children: dict[str, subprocess.Popen] = {}

    def on_signal(self, signum: int, frame: object) -> None:
        self.stops += 1

    def on_hangup(self, signum: int, frame: object) -> None:
        self.hangups += 1

    def pass_on_hangups(self) -> None:
        """SIGHUP to gunicorn (a graceful reload of its workers) and nginx (its config), from the poll loop."""
        if not self.hangups:
            return
        self.hangups = 0
        for name, proc in self.children.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGHUP)
        say("reloading: gunicorn replaces its workers gracefully, nginx rereads its config")

    def start(self, argv: list[str]) -> subprocess.Popen:
        # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops both in order.
        return subprocess.Popen(argv, env=settings_env(self.settings), process_group=0,
                                preexec_fn=_die_with_parent)  # noqa: PLW1509 (the supervisor runs no threads)

    def run(self) -> int:
        previous = {s: signal.signal(s, self.on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self.on_hangup)
        gunicorn = nginx = None
        try:
            gunicorn = self.start(gunicorn_argv(self.settings, f"unix:{self.files.gunicorn_socket}",
                                                behind_proxy=True))
            if not self.wait_for(lambda: self.files.gunicorn_socket.exists() or gunicorn.poll() is not None,
                                 START_SECONDS):
                say(f"gunicorn did not open {self.files.gunicorn_socket} within {START_SECONDS} s")
                return self.stop({"gunicorn": gunicorn}, failed="gunicorn")
            if gunicorn.poll() is None and not self.stops:
                nginx = self.start(nginx_argv(self.nginx, self.files))
                say(f"nginx on {self.settings.bind} -> gunicorn (workers: {self.settings.workers}) on "
                    f"unix:{self.files.gunicorn_socket}; what nginx refuses itself is logged in "
                    f"{self.files.run_dir / 'access.log'}")
            children = {"nginx": nginx, "gunicorn": gunicorn}
            children = self.children = {name: proc for name, proc in children.items() if proc is not None}
            self.wait_for(lambda: any(p.poll() is not None for p in children.values()), None)
            failed = next((name for name, p in children.items() if p.poll() is not None), None)
            return self.stop(children, failed if not self.stops else None)
        finally:
            for proc in (nginx, gunicorn):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def wait_for(self, done: Callable[[], bool], seconds: float | None) -> bool:
        """Poll until ``done()`` or a stop signal; False when ``seconds`` ran out first."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not done() and not self.stops:
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.pass_on_hangups()
            time.sleep(POLL_SECONDS)
        return True

    def stop(self, children: dict[str, subprocess.Popen], failed: str | None) -> int:
        """Stop nginx first (it stops accepting and finishes its requests), then gunicorn; the exit status."""
        if failed:
            code = children[failed].returncode
            why = " (a worker could not start; the reason is logged above)" if failed == "gunicorn" and code == 3 else ""
            say(f"{failed} exited with status {code}; stopping{why}")
        else:
            say("stopping: nginx finishes its requests, then gunicorn")
        graceful = {"nginx": signal.SIGQUIT, "gunicorn": signal.SIGTERM}
        quick = {"nginx": signal.SIGTERM, "gunicorn": signal.SIGINT}
        stops_seen = self.stops
        for name in ("nginx", "gunicorn"):
            proc = children.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(graceful[name])
            deadline = time.monotonic() + GRACE_SECONDS
            while proc.poll() is None:
                if self.stops > stops_seen:  # asked again: do not wait for requests to finish
                    proc.send_signal(quick[name])
                    stops_seen = self.stops
                if time.monotonic() > deadline:
                    say(f"{name} did not stop within {GRACE_SECONDS} s; killing it")
                    proc.kill()
                time.sleep(POLL_SECONDS)
        codes = {name: proc.wait() for name, proc in children.items()}
        for proc in children.values():  # workers a dead master left behind (each child leads its own group)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        if failed:
            return codes[failed] if codes[failed] > 0 else 1  # killed by a signal (negative) or exited 0: 1
        unclean = {name: code for name, code in codes.items() if code != 0}
        if unclean:
            say("stopped uncleanly: " + ", ".join(f"{n} exited with status {c}" for n, c in unclean.items()))
            return 1
        say("stopped")
        return 0
