"""Issues 16 and 17: what the processes that serve requests run as, read from /proc of a real deployment.

- Never root: started as root (as the test machine runs), every process that reads a
  request, nginx's workers and gunicorn's, runs as FASHION16_USER (nobody), with that
  user's groups only; the masters keep root.
- One BLAS thread per worker: a served worker holds its main thread and its request
  threads, and no BLAS or OpenMP thread, even when the environment asks for more.
"""
from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image
from serving_helpers import deployment, send, serve_env, wait_for

from app.privileges import worker_account
from app.proxy import user_directive
from app.settings import ROOT, Settings, SettingsError
from bench.load import search_request
from bench.servers import children, cmdline, free_port

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="started as another user, everything runs as that user")


def ids(pid: int) -> dict[str, list[int]]:
    """The Uid, Gid and Groups lines of /proc/PID/status."""
    lines = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {key: [int(n) for n in lines[key].split()] for key in ("Uid", "Gid", "Groups")}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), 90).save(out, "PNG")
    return out.getvalue()


@pytest.mark.serving
@as_root
def test_no_process_that_reads_requests_runs_as_root(store_dir, tmp_path):
    nobody = pwd.getpwnam("nobody")
    with deployment(store_dir, tmp_path / "serve.log", workers=2) as running:
        assert wait_for(lambda: running.log_text().count("serves requests as nobody:nogroup") == 2, 60)
        assert send(running.base_url, search_request(png())).status == 200  # served as nobody, from root's stores
        nginx = next(pid for pid in children(running.process.pid) if "nginx" in " ".join(cmdline(pid)))
        readers = {"gunicorn worker": running.workers(), "nginx worker": children(nginx)}
        masters = {"gunicorn master": running.gunicorn_master(), "nginx master": nginx}
        assert len(readers["gunicorn worker"]) == 2 and readers["nginx worker"]
        for kind, pids in readers.items():
            for pid in pids:
                assert ids(pid) == {"Uid": [nobody.pw_uid] * 4, "Gid": [nobody.pw_gid] * 4,
                                    "Groups": [nobody.pw_gid]}, (kind, pid, ids(pid))
        assert all(ids(pid)["Uid"][0] == 0 for pid in masters.values())
        assert send(running.base_url, search_request(png())).status == 200


def photo_store_in(folder: Path, photos: Path, photo_model) -> None:
    from app.catalog import catalog_store
    from app.indexer import build
    from app.sources import FolderSource

    build(catalog_store(Settings(store_dir=folder), "shop"), photo_model, FolderSource(photos, kind="folder"), "shop")


@pytest.mark.serving
@as_root
def test_photos_the_worker_user_cannot_read_stop_serve_with_one_line(catalog_photos, photo_model, tmp_path):
    """A shop catalog whose photos sit in a folder only root may enter: serve says so and stops."""
    private = Path(tempfile.mkdtemp(prefix="fashion16-private-"))  # mode 0700: root's alone
    try:
        for name in catalog_photos.paths[:3]:
            shutil.copy(catalog_photos.root / name, private / Path(name).name)
        stores = tmp_path / "stores"
        photo_store_in(stores, private, photo_model)
        env = serve_env(stores, free_port(), 1, 1, {"FASHION16_CATALOGS": "shop", "FASHION16_DEFAULT_CATALOG": "shop"})
        done = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(private)
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert f"serves requests as nobody (FASHION16_USER), who cannot read {private}" in line
    assert "Traceback" not in done.stderr


@pytest.mark.serving
def test_a_worker_runs_no_blas_thread_whatever_the_environment_asks(store_dir, tmp_path):
    """One request thread (FASHION16_THREADS=1): after searches, the worker has two threads and no third.
    Without gunicorn.conf.py's setting, OpenBLAS and OpenMP add one each here (measured: four)."""
    env = {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    with deployment(store_dir, tmp_path / "serve.log", threads=1, env=env) as running:
        for _ in range(3):
            assert send(running.base_url, search_request(png())).status == 200
        [worker] = running.workers()
        names = [Path(f"/proc/{worker}/task/{t}/comm").read_text().strip() for t in os.listdir(f"/proc/{worker}/task")]
        assert names.count("catalog-watcher") == 1  # the thread that follows new catalog versions
        assert len(names) == 3, names


@as_root
@pytest.mark.parametrize("user, says", [("root", "is root; name an unprivileged user"),
                                        ("0", "is root; name an unprivileged user"),
                                        ("no-such-user-here", "no such user")])
def test_the_serving_user_must_exist_and_not_be_root(user, says):
    with pytest.raises(SettingsError, match=f"FASHION16_USER={user}.*{says}"):
        worker_account(Settings(user=user))
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "wsgi:app"], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "FASHION16_USER": user, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"Fashion-16 cannot start: FASHION16_USER={user}" in done.stderr
    assert "Traceback" not in done.stderr


@as_root
def test_nginx_workers_run_as_the_user_named_with_its_own_group():
    daemon = pwd.getpwnam("daemon")
    account = worker_account(Settings(user="daemon"))
    assert (account.uid, account.gid) == (daemon.pw_uid, daemon.pw_gid)
    assert user_directive(Settings(user="daemon")) == f"user daemon {account.group};"
    assert user_directive(Settings()) == "user nobody nogroup;"  # Debian has no group "nobody"


@pytest.mark.serving
@as_root
@pytest.mark.parametrize("admin", [False, True])
def test_stores_the_worker_user_cannot_follow_stop_serve_with_one_line(store_dir, tmp_path, admin):
    """Workers read new catalog versions after they switch user, and with the admin API on they write there:
    a store folder that user cannot read (or, for the admin API, write) stops serve at start, saying so."""
    private = Path(tempfile.mkdtemp(prefix="fashion16-stores-"))  # mode 0700: root's alone
    try:
        shutil.copytree(store_dir / "fashion-mnist", private / "fashion-mnist")
        if admin:  # readable by the worker user, not writable
            private.chmod(0o755)
        extra = {"FASHION16_ADMIN_TOKEN": "t" * 20} if admin else {}
        env = serve_env(private, free_port(), 1, 1, extra)
        done = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(private)
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if "cannot start" in line]
    says = "who cannot write" if admin else "who cannot read"
    assert f"serves requests as nobody (FASHION16_USER), {says} {private / 'fashion-mnist'}" in line, line
    assert "Traceback" not in done.stderr


@pytest.mark.serving
@as_root
def test_saved_searches_the_worker_user_cannot_reach_stop_serve_with_one_line(store_dir):
    """Results addresses are kept by the workers, who serve as nobody: a saved-searches folder inside one only
    root may enter stops serve at start, naming it (before the fix, every page search answered 500)."""
    private = Path(tempfile.mkdtemp(prefix="fashion16-results-"))  # mode 0700: root's alone
    try:
        env = serve_env(store_dir, free_port(), 1, 1, {"FASHION16_RESULTS_DIR": str(private / "searches")})
        done = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        made = (private / "searches").stat()
    finally:
        shutil.rmtree(private)
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if "cannot start" in line]
    assert f"serves requests as nobody (FASHION16_USER), who cannot write {private / 'searches'}" in line, line
    assert made.st_uid == pwd.getpwnam("nobody").pw_uid  # root made the folder the serving user's
    assert "Traceback" not in done.stderr
