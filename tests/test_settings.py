"""Settings: read from FASHION16_* once, checked, and the same for the app, the CLI and gunicorn."""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import ROOT, WORKER_THREAD_ENV, Settings, SettingsError, cpu_count

GUNICORN_CONF = ROOT / "gunicorn.conf.py"


def test_defaults_without_environment():
    s = Settings.from_env({})
    assert s.store_dir == ROOT / "index_store" and s.models_dir == ROOT / "models"
    assert s.catalogs == () and s.default_catalog == "photos" and s.proxy
    assert s.bind == "0.0.0.0:8000" and s.workers == cpu_count() and s.threads == 2 and s.timeout == 60
    assert s.max_upload_bytes == 10 * 2**20 and s.max_pixels == 40_000_000
    assert s.rate_limit == 10 and s.rate_burst == 20 and s.user == "nobody"


def test_settings_come_from_the_environment(tmp_path):
    s = Settings.from_env({
        "FASHION16_STORE_DIR": str(tmp_path), "FASHION16_CATALOGS": "photos, shop", "FASHION16_DEFAULT_CATALOG": "shop",
        "FASHION16_MAX_UPLOAD_MB": "2.5", "FASHION16_MAX_PIXELS": "1000000",
        "PORT": "9000", "WEB_CONCURRENCY": "3", "FASHION16_THREADS": "4", "FASHION16_TIMEOUT": "30",
        "FASHION16_LOG_LEVEL": "WARNING", "FASHION16_PROXY": "off", "FASHION16_RATE_LIMIT": "2.5",
        "FASHION16_RATE_BURST": "7", "FASHION16_USER": "daemon"})
    assert s.store_dir == tmp_path and s.catalogs == ("photos", "shop") and s.default_catalog == "shop"
    assert s.max_upload_bytes == int(2.5 * 2**20) and s.max_pixels == 1_000_000
    assert s.bind == "0.0.0.0:9000" and s.port == 9000 and s.workers == 3 and s.threads == 4 and s.timeout == 30
    assert s.log_level == "warning" and not s.proxy
    assert s.rate_limit == 2.5 and s.rate_burst == 7 and s.user == "daemon"
    assert all(Settings.from_env({"FASHION16_RATE_LIMIT": off}).rate_limit == 0 for off in ("0", "off", "0.0"))
    assert Settings.from_env({"FASHION16_WORKERS": "5", "WEB_CONCURRENCY": "3"}).workers == 5
    assert Settings.from_env({"FASHION16_BIND": "127.0.0.1:8123", "PORT": "1"}).bind == "127.0.0.1:8123"


@pytest.mark.parametrize("name, value", [
    ("FASHION16_MAX_UPLOAD_MB", "lots"), ("FASHION16_MAX_UPLOAD_MB", "-1"), ("FASHION16_MAX_UPLOAD_MB", "0"),
    ("FASHION16_MAX_UPLOAD_MB", "nan"), ("FASHION16_MAX_PIXELS", "1_000"), ("FASHION16_MAX_PIXELS", "１０"),
    ("FASHION16_MAX_PIXELS", "2.5"), ("FASHION16_WORKERS", "0"), ("WEB_CONCURRENCY", "two"),
    ("FASHION16_THREADS", "+2"), ("FASHION16_TIMEOUT", "0"), ("FASHION16_TIMEOUT", "-5"), ("PORT", "http"),
    ("FASHION16_BIND", "localhost"), ("FASHION16_BIND", "0.0.0.0:99999"), ("FASHION16_LOG_LEVEL", "loud"),
    ("FASHION16_PROXY", "maybe"), ("FASHION16_RATE_LIMIT", "fast"), ("FASHION16_RATE_LIMIT", "-1"),
    ("FASHION16_RATE_BURST", "0"), ("FASHION16_RATE_BURST", "2.5"),
])
def test_a_bad_setting_names_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_gunicorn_reads_the_same_settings(monkeypatch):
    monkeypatch.setenv("FASHION16_BIND", "127.0.0.1:8765")
    monkeypatch.setenv("FASHION16_WORKERS", "3")
    monkeypatch.setenv("FASHION16_THREADS", "5")
    monkeypatch.setenv("FASHION16_TIMEOUT", "17")
    monkeypatch.setenv("FASHION16_LOG_LEVEL", "debug")
    for name in WORKER_THREAD_ENV:  # as an operator's shell might; monkeypatch also restores them afterwards
        monkeypatch.setenv(name, "4")
    conf = runpy.run_path(str(GUNICORN_CONF))
    assert (conf["bind"], conf["workers"], conf["threads"], conf["timeout"], conf["loglevel"]) == \
        ("127.0.0.1:8765", 3, 5, 17, "debug")
    assert conf["preload_app"] is False
    assert all(os.environ[name] == "1" for name in WORKER_THREAD_ENV)  # what the forked workers inherit


@pytest.mark.parametrize("name, value", [("FASHION16_TIMEOUT", "0"), ("FASHION16_WORKERS", "many")])
def test_gunicorn_stops_at_a_bad_setting_with_one_line(name, value):
    """FASHION16_TIMEOUT=0 would silently switch off gunicorn's worker timeout: refused instead."""
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "wsgi:app"], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", name: value, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"Fashion-16 cannot start: {name} must be" in done.stderr
    assert "Traceback" not in done.stderr


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().workers = 3  # type: ignore[misc]
    assert Settings().with_(workers=3).workers == 3
    assert isinstance(Settings().store_dir, Path)
