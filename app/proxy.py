"""The nginx reverse proxy of ``python -m app serve``: its configuration and error pages, from Settings.

Everything nginx reads or writes lives in one private runtime directory (mode 0700): the
configuration, its temp folders, pid file, access log, the error pages and gunicorn's unix
socket, so nginx runs as the current user without touching /etc, /var or /run. Started as
root, its workers run as FASHION16_USER, who then owns that directory (app/privileges.py).

Searches cost CPU, so each client address may start FASHION16_RATE_LIMIT of them a second
(FASHION16_RATE_BURST at once above that); more are answered 429 with ``Retry-After``,
in the app's shape like every error nginx answers itself.
"""
from __future__ import annotations

import math
import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .headers import SECURITY_HEADERS
from .privileges import hand_over, worker_account
from .server_errors import error_json, error_page, message, too_large_message
from .settings import ROOT, Settings, cpu_count

TEMPLATE = ROOT / "deploy" / "nginx.conf.in"
NGINX_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")
INSTALL_HINT = ("nginx is not installed: install it (`apt-get install nginx`), or serve with gunicorn alone: "
                "`python -m app serve --no-proxy` (FASHION16_PROXY=0)")

# Timeouts (seconds) for clients. A whole request header must arrive within HEADER_TIMEOUT;
# a body or response may pause at most BODY_TIMEOUT / SEND_TIMEOUT between two packets.
HEADER_TIMEOUT = 10
BODY_TIMEOUT = 20
SEND_TIMEOUT = 20
KEEPALIVE_TIMEOUT = 15
HEADER_BUFFER = "8k"  # the longest request line or header line nginx accepts
PROXY_GRACE = 5       # nginx waits this much longer than gunicorn's worker timeout
SHUTDOWN_TIMEOUT = 25  # a graceful stop waits at most this long for requests in progress
# The statuses nginx answers itself, as nginx knows them -> as clients see them (494 is nginx's
# "request header too large", which is HTTP's 431). A client that stalls past a timeout (408)
# is disconnected rather than answered: nginx resets timed-out connections. 500 and 503 are
# there for safety: nothing in this configuration makes nginx answer them.
ERROR_STATUSES = {400: 400, 404: 404, 405: 405, 408: 408, 413: 413, 414: 414, 429: 429, 494: 431, 500: 500,
                  501: 501, 502: 502, 503: 503, 504: 504, 505: 505}
# The locations that run a search (CPU-bound), limited per client address: regular expressions
# on the request's path. A new CPU-bound route gets its line here.
RATE_LIMITED_PATHS = (
    r"^/api/search$",   # POST /api/search
    r"^/search$",       # POST /search, the form
    r"^/item/",         # GET /item/<catalog>/<id>, "more like this"
)
RATE_ZONE = "fashion16_search"


@dataclass(frozen=True)
class ProxyFiles:
    """What serving needs to know about a written runtime directory."""

    run_dir: Path
    config: Path
    gunicorn_socket: Path


def find_nginx(name: str = "nginx") -> str:
    """The nginx binary (a path, or a name on PATH or in the usual sbin folders); FileNotFoundError saying how to
    get it."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(NGINX_DIRS))
    if not found:
        raise FileNotFoundError(INSTALL_HINT if name == "nginx" else f"FASHION16_NGINX={name}: no such program; "
                                + INSTALL_HINT)
    return found


def nginx_argv(nginx: str, files: ProxyFiles) -> list[str]:
    """nginx in the foreground on our configuration; errors to stderr from the first line (-e, nginx 1.19.5+)."""
    argv = [nginx, "-p", f"{files.run_dir}/", "-c", str(files.config)]
    return argv + ["-e", "stderr"] if nginx_version(nginx) >= (1, 19, 5) else argv


def nginx_version(nginx: str) -> tuple[int, ...]:
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", done.stderr + done.stdout)
    return tuple(int(n) for n in found.groups()) if found else (0,)


def write_error_pages(settings: Settings, folder: Path) -> None:
    """errors/api/STATUS (JSON {"error": ...}) and errors/page/STATUS (HTML) for every status nginx answers."""
    for kind in ("api", "page"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    for status in ERROR_STATUSES.values():
        text = too_large_message(settings.max_upload_mb) if status == 413 else message(status)
        (folder / "api" / str(status)).write_bytes(error_json(text))
        (folder / "page" / str(status)).write_bytes(error_page(status, text))


def error_page_lines(indent: str = "        ") -> str:
    """error_page directives: the body is chosen by $fashion16_error_kind (api or page) and the status."""
    return "\n".join(f"{indent}error_page {code} {'' if sent == code else f'={sent} '}"
                     f"/_fashion16_error/$fashion16_error_kind/{sent};" for code, sent in ERROR_STATUSES.items())


def user_directive(settings: Settings) -> str:
    """As root, the workers run as FASHION16_USER (its primary group named: Debian has no group "nobody")."""
    account = worker_account(settings)
    if account is None:
        return "# not root: nginx and its workers run as this user"
    return f"user {account.name} {account.group};"


def rate(settings: Settings) -> str:
    """nginx's notation of FASHION16_RATE_LIMIT: requests a second, or a minute where that is fractional."""
    per_second = settings.rate_limit
    return f"{per_second:g}r/s" if per_second == int(per_second) else f"{round(per_second * 60)}r/m"


def retry_after(settings: Settings) -> int:
    """Seconds until a limited client may search again: the time one request of its rate takes to free."""
    return max(1, math.ceil(1 / settings.rate_limit))


def rate_limit_zone(settings: Settings, indent: str = "    ") -> str:
    """The http-level part of the rate limit: which requests are limited (key per address) and how fast."""
    if not settings.rate_limit:
        return f"{indent}# FASHION16_RATE_LIMIT=0: no rate limit"
    paths = "\n".join(f"{indent}    ~{path} $binary_remote_addr;" for path in RATE_LIMITED_PATHS)
    return (f"{indent}map $uri $fashion16_rate_key {{\n{indent}    default \"\";\n{paths}\n{indent}}}\n"
            f"{indent}limit_req_zone $fashion16_rate_key zone={RATE_ZONE}:10m rate={rate(settings)};\n"
            f"{indent}limit_req_status 429;\n"
            f"{indent}limit_req_log_level info;  # the access log has them; warn would flood serve's output\n"
            f"{indent}map $status $fashion16_retry_after {{\n{indent}    429 {retry_after(settings)};\n"
            f"{indent}    default \"\";\n{indent}}}")


def rate_limit(settings: Settings, indent: str = "            ") -> str:
    """The location-level part: requests with an empty key (every other path) are not limited."""
    if not settings.rate_limit:
        return f"{indent}# FASHION16_RATE_LIMIT=0: no rate limit"
    return f"{indent}limit_req zone={RATE_ZONE} burst={settings.rate_burst} nodelay;"


def error_header_lines(settings: Settings, indent: str = "            ") -> str:
    """The headers of the error pages nginx answers: the app's security headers, Retry-After on a 429."""
    lines = [f"{indent}add_header {name} \"{value}\" always;" for name, value in SECURITY_HEADERS.items()]
    if settings.rate_limit:
        lines.append(f"{indent}add_header Retry-After $fashion16_retry_after always;  # on 429 only (empty: not sent)")
    return "\n".join(lines)


def file_limits() -> tuple[int, int]:
    """(worker_rlimit_nofile, worker_connections): what this user may open, up to 16,384 files per worker."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = min(16_384, hard if hard != resource.RLIM_INFINITY else 16_384)
    nofile = max(nofile, min(soft, 16_384))
    return nofile, max(256, min(4096, nofile // 2 - 64))


def render(settings: Settings, run_dir: Path, gunicorn_socket: Path) -> str:
    nofile, connections = file_limits()
    values = {
        "NOFILE": str(nofile), "WORKER_CONNECTIONS": str(connections), "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "RUN_DIR": str(run_dir), "GUNICORN_SOCKET": str(gunicorn_socket), "LISTEN": settings.bind,
        "NGINX_WORKERS": str(min(cpu_count(), 4)), "USER_DIRECTIVE": user_directive(settings),
        "HEADER_TIMEOUT": str(HEADER_TIMEOUT), "BODY_TIMEOUT": str(BODY_TIMEOUT), "SEND_TIMEOUT": str(SEND_TIMEOUT),
        "KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT), "HEADER_BUFFER": HEADER_BUFFER,
        "MAX_BODY_BYTES": str(settings.max_upload_bytes), "PROXY_TIMEOUT": str(settings.timeout + PROXY_GRACE),
        "ERROR_HEADERS": error_header_lines(settings), "ERROR_PAGES": error_page_lines(),
        "RATE_LIMIT_ZONE": rate_limit_zone(settings), "RATE_LIMIT": rate_limit(settings),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ValueError(f"{TEMPLATE}: no value for {', '.join(sorted(set(left)))}")
    return text


def write_proxy_files(settings: Settings, run_dir: Path) -> ProxyFiles:
    """Fill ``run_dir`` (already private) with nginx's configuration, folders and error pages.

    Started as root, the directory then belongs to FASHION16_USER, who runs nginx's workers (they
    write request bodies to its temp folders) and gunicorn's (they own the socket).
    """
    socket = run_dir / "gunicorn.sock"
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / name).mkdir(mode=0o700, exist_ok=True)
    write_error_pages(settings, run_dir / "errors")
    config = run_dir / "nginx.conf"
    config.write_text(render(settings, run_dir, socket))
    hand_over(run_dir, worker_account(settings))
    return ProxyFiles(run_dir, config, socket)
