"""Every setting, read from FASHION16_* environment variables once and checked, in one place.

The command line, ``create_app`` and ``gunicorn.conf.py`` all build their configuration
from ``Settings.from_env()``, so a value means the same everywhere and a typo stops
startup with one line naming the variable (twelve-factor: one build runs anywhere).
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_CATALOG = "photos"
# What every gunicorn worker runs with (gunicorn.conf.py sets it before any worker imports NumPy):
# one BLAS and OpenMP thread. Requests already run in parallel across workers; a second BLAS
# thread per worker only fights them for the same cores (issue 16, 2 workers x 2 threads
# saturated: 94.7 searches/s and a 34 ms median with one BLAS thread, 41.0 and 85 ms with two).
WORKER_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_results_dir() -> Path:
    """Saved searches live in the temporary folder, one per user (containers may write only there)."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"fashion16-results-{user}"


class SettingsError(ValueError):
    """A FASHION16_* variable has a value that cannot be used."""


def cpu_count() -> int:
    """CPUs this process may use (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    models_dir: Path = ROOT / "models"
    store_dir: Path = ROOT / "index_store"
    catalogs: tuple[str, ...] = ()          # served catalogs; empty = the built-ins plus every store found
    stores: tuple[tuple[str, str], ...] = ()  # (catalog, store URI) for catalogs not in STORE_DIR/NAME
    reload_seconds: float = 1.0             # how often a worker looks for a new version of its catalogs
    admin_token: str | None = None          # enables the admin API (adding and removing catalog items)
    default_catalog: str = DEFAULT_CATALOG
    max_upload_mb: float = 10.0
    max_pixels: int = 40_000_000
    inference_threads: int = 1              # per worker; workers already spread requests over the CPUs
    # saved searches: results URLs that reload and can be shared (app/saved_searches.py)
    results: bool = True
    results_dir: Path = field(default_factory=default_results_dir)
    results_ttl_hours: float = 24.0
    results_max_mb: float = 200.0
    # gunicorn
    bind: str = "0.0.0.0:8000"
    workers: int = field(default_factory=cpu_count)
    threads: int = 2
    timeout: int = 60
    log_level: str = "info"
    access_log: str = "-"
    user: str = "nobody"                    # started as root, requests are served as this user (app/privileges.py)
    # the reverse proxy in front of gunicorn (python -m app serve)
    proxy: bool = True
    nginx: str = "nginx"                    # the nginx binary: a name looked up on PATH and in sbin, or a path
    rate_limit: float = 10.0                # search requests per second per client address, at nginx; 0: off
    rate_burst: int = 20                    # requests a client may send at once above that rate

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def port(self) -> int:
        return int(self.bind.rsplit(":", 1)[1])

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        return cls(
            models_dir=read.path("FASHION16_MODELS_DIR", cls.models_dir),
            store_dir=read.path("FASHION16_STORE_DIR", cls.store_dir),
            catalogs=read.names("FASHION16_CATALOGS"),
            stores=read.pairs("FASHION16_STORES"),
            reload_seconds=read.positive("FASHION16_RELOAD_SECONDS", cls.reload_seconds, float),
            admin_token=read.secret("FASHION16_ADMIN_TOKEN"),
            default_catalog=read.text("FASHION16_DEFAULT_CATALOG", DEFAULT_CATALOG),
            max_upload_mb=read.positive("FASHION16_MAX_UPLOAD_MB", cls.max_upload_mb, float),
            max_pixels=read.positive("FASHION16_MAX_PIXELS", cls.max_pixels, int),
            inference_threads=read.positive("FASHION16_INFERENCE_THREADS", cls.inference_threads, int),
            results=read.flag("FASHION16_RESULTS", True),
            results_dir=read.path("FASHION16_RESULTS_DIR", default_results_dir()),
            results_ttl_hours=read.positive("FASHION16_RESULTS_TTL_HOURS", cls.results_ttl_hours, float),
            results_max_mb=read.positive("FASHION16_RESULTS_MAX_MB", cls.results_max_mb, float),
            bind=read.bind(),
            workers=read.workers(),
            threads=read.positive("FASHION16_THREADS", cls.threads, int),
            timeout=read.positive("FASHION16_TIMEOUT", cls.timeout, int),
            log_level=read.choice("FASHION16_LOG_LEVEL", "info", LOG_LEVELS),
            access_log=env.get("FASHION16_ACCESS_LOG", "-") or "-",
            user=read.text("FASHION16_USER", cls.user),
            proxy=read.flag("FASHION16_PROXY", True),
            nginx=read.text("FASHION16_NGINX", cls.nginx),
            rate_limit=read.rate("FASHION16_RATE_LIMIT", cls.rate_limit),
            rate_burst=read.positive("FASHION16_RATE_BURST", cls.rate_burst, int),
        )


def one_process_catalogs(stores: tuple[tuple[str, str], ...]) -> list[str]:
    """Catalogs served from a Milvus Lite file, which only one process may open."""
    return [name for name, uri in stores if uri.startswith("milvus-lite:")]


class _Reader:
    """Typed reads of environment variables; every failure names the variable and its value."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def path(self, name: str, default: Path) -> Path:
        raw = self.raw(name)
        return Path(raw).expanduser().resolve() if raw else default

    def names(self, name: str) -> tuple[str, ...]:
        raw = self.raw(name)
        return tuple(n.strip() for n in raw.split(",") if n.strip()) if raw else ()

    def pairs(self, name: str) -> tuple[tuple[str, str], ...]:
        """NAME=VALUE,NAME=VALUE (catalog store URIs)."""
        out = []
        for item in self.names(name):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise SettingsError(f"{name} must be CATALOG=URI[,CATALOG=URI...], got {item!r}")
            out.append((key.strip(), value.strip()))
        return tuple(out)

    def secret(self, name: str) -> str | None:
        raw = self.raw(name)
        if raw is not None and len(raw) < 16:
            raise SettingsError(f"{name} must be at least 16 characters (a long random token), got {len(raw)}")
        return raw

    def positive(self, name: str, default: Any, cast: Callable[[str], Any]) -> Any:
        raw = self.raw(name)
        if raw is None:
            return default
        pattern = r"[0-9]+" if cast is int else r"[0-9]+(\.[0-9]*)?|\.[0-9]+"
        value = cast(raw) if re.fullmatch(pattern, raw) else None  # ASCII digits only: no "1_0", no "１０"
        if value is None or value <= 0:
            raise SettingsError(f"{name} must be a positive number, got {raw!r}")
        return value

    def rate(self, name: str, default: float) -> float:
        """A positive number, or 0 / off for none."""
        raw = self.raw(name)
        if raw is not None and (raw.lower() in ("off", "false", "no") or re.fullmatch(r"0+(\.0*)?", raw)):
            return 0.0
        try:
            return float(self.positive(name, default, float))
        except SettingsError:
            raise SettingsError(f"{name} must be a positive number of requests per second, or 0/off, "
                                f"got {raw!r}") from None

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.lower() not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    def flag(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be on or off (1/0, true/false), got {raw!r}")

    def workers(self) -> int:
        """FASHION16_WORKERS, else WEB_CONCURRENCY, else one per CPU; one when a Milvus Lite file is served."""
        asked = self.positive("FASHION16_WORKERS", 0, int) or self.positive("WEB_CONCURRENCY", 0, int)
        held = one_process_catalogs(self.pairs("FASHION16_STORES"))
        if held and asked > 1:
            raise SettingsError(f"FASHION16_WORKERS={asked}: catalog {held[0]}'s Milvus Lite file is held by one "
                                f"process; serve it with FASHION16_WORKERS=1, or from a Milvus server "
                                f"(milvus://HOST:PORT), which any number of workers share")
        return 1 if held else asked or cpu_count()

    def bind(self) -> str:
        """FASHION16_BIND as HOST:PORT, else 0.0.0.0:$PORT (8000)."""
        raw = self.raw("FASHION16_BIND")
        if raw is None:
            port = self.positive("PORT", 8000, int)
            raw = f"0.0.0.0:{port}"
        _host, sep, port = raw.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"FASHION16_BIND must be HOST:PORT, got {raw!r}")
        return raw
