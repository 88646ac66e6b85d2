"""Faults: a worker killed under load, and damaged stores at start (real nginx, gunicorn and HDF5).

A SIGKILLed worker is replaced by gunicorn's master; only the requests that worker held
fail (nginx answers them 502, or closes the connection when the worker died mid-answer),
before and after the kill nothing does. A store with
flipped bytes, an edited attribute or cut short stops `python -m app serve` at start with
one line naming the file and the command that rebuilds it, and no traceback.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest
from serving_helpers import Deployment, deployment, serve_env, wait_for

from bench.load import run_load
from bench.servers import ROOT, free_port

pytestmark = pytest.mark.serving

WORKERS, THREADS, CLIENTS = 2, 2, 4


@pytest.fixture()
def two_workers(store_dir, tmp_path) -> Iterator[Deployment]:
    with deployment(store_dir, tmp_path / "serve.log", workers=WORKERS, threads=THREADS) as running:
        yield running


def load(running: Deployment, query_images: list[bytes], seconds: float) -> dict:
    return run_load(running.base_url, query_images, [b"not an image"], clients=CLIENTS, seconds=seconds, burst=8,
                    master_pid=running.process.pid, timeout=30)


def test_a_killed_worker_is_replaced_and_only_its_requests_fail(two_workers, query_images):
    before = load(two_workers, query_images, 2)
    assert before["errors"]["total"] == 0 and before["ok"] > 0, before
    workers, booted = two_workers.workers(), two_workers.booted_workers()
    during: dict = {}
    loader = threading.Thread(target=lambda: during.update(load(two_workers, query_images, 3)))
    loader.start()
    time.sleep(1)
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    loader.join(60)
    assert wait_for(lambda: two_workers.booted_workers() == booted + 1 and len(two_workers.workers()) == WORKERS, 30)
    after = load(two_workers, query_images, 2)
    replaced = set(two_workers.workers())
    print(f"\nworker {victim} killed under load ({CLIENTS} clients): {during['errors']['total']} of "
          f"{during['requests']} requests failed ({during['errors']}); replaced by {sorted(replaced - set(workers))}")
    assert victim not in replaced and len(replaced & set(workers)) == WORKERS - 1
    # Only what the killed worker held can fail: at most one request per client, nginx's 502, or a closed
    # connection where the worker died while writing its answer (nginx had passed the headers on already).
    assert during["errors"]["total"] <= CLIENTS and during["errors"]["unexpected"] == 0, during
    assert during["errors"]["timeouts"] == 0 and during["ok"] > 0, during
    assert after["errors"]["total"] == 0 and after["ok"] > 0, after


def flip_embedding_bytes(path: Path) -> None:
    """Flip bytes inside the embeddings: only the content digest in the manifest can notice."""
    with h5py.File(path, "r") as f:
        start = f["items/embedding"].id.get_offset()
    data = bytearray(path.read_bytes())
    for i in range(0, 64, 8):
        data[start + 100 + i] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_format_version(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 1


def add_root_attribute(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs["catalog"] = "edited"


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def reverse_ids(path: Path) -> None:
    """A valid HDF5 edit (h5py recomputes any HDF5 checksum): only the content digest can notice."""
    with h5py.File(path, "r+") as f:
        f["items/id"][...] = f["items/id"][()][::-1]


DAMAGE = {"flipped bytes": flip_embedding_bytes, "format_version edited": edit_format_version,
          "attribute added": add_root_attribute, "cut in half": cut_in_half, "ids reversed": reverse_ids}


def test_damaged_stores_are_refused_at_start_with_one_clear_line(store_dir, tmp_path):
    """All serve at once (each start fails within seconds); each must name its store and the fix."""
    started = {}
    for name, damage in DAMAGE.items():
        folder = tmp_path / name.replace(" ", "-")
        store = folder / "fashion-mnist"
        shutil.copytree(store_dir / "fashion-mnist", store)
        damage(sorted(store.glob("v*.h5"))[-1])
        env = serve_env(folder, free_port(), 1, 1, None)
        started[name] = (store, subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env,
                                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for name, (store, process) in started.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode != 0, f"{name}: served a damaged store\n{output}"
        lines = [line for line in output.splitlines() if "cannot start" in line]
        assert len(lines) == 1, f"{name}:\n{output}"
        assert str(store) in lines[0] and "`python -m app index build --catalog fashion-mnist`" in lines[0], lines[0]
        assert "Traceback" not in output, f"{name}:\n{output}"
        assert "gunicorn exited with status 3; stopping (a worker could not start" in output  # nginx stopped too
