"""Helpers for the serving tests: a small real store and the real deployment (`python -m app serve`).

The store holds 2,000 Fashion-MNIST training images indexed by the committed model, written
as a real HDF5 file; the deployment is the shipped command in a subprocess: nginx in front
of gunicorn (or gunicorn alone with ``--no-proxy``), stopped with SIGTERM at the end, whose
clean exit is part of the check. The fixtures built on them are in serving_fixtures.py.
"""
from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.load import Dropped, HttpClient, cmdline, gunicorn_master, request_bytes, worker_pids

ROOT = Path(__file__).resolve().parent.parent
SMALL_STORE = 2000
BOOT_SECONDS = 60
CATALOG = "fashion-mnist"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def build_small_store(folder: Path, n: int = SMALL_STORE) -> Path:
    """A real fashion-mnist store of the first ``n`` training images, as `index build` writes it."""
    from app.catalog import store_path
    from app.fashion_mnist import load_fashion_mnist
    from app.runtime import open_model
    from app.settings import Settings
    from app.store import Manifest, assemble, write_store

    data = load_fashion_mnist(download=False)
    model = open_model(ROOT / "models" / "fashion16.tflite")
    images, labels = data.x_train[:n], data.y_train[:n].astype(np.int16)
    _, embeddings = model(np.stack([model.prepare(x) for x in images]))
    manifest = Manifest(catalog=CATALOG, model_file=model.path.name, model_sha256=model.sha256,
                        class_names=model.class_names, source="fashion-mnist")
    return write_store(assemble(manifest, embeddings, labels, labels, images=images),
                       store_path(Settings(store_dir=folder), CATALOG))


@dataclass
class Deployment:
    """A running `python -m app serve`: where it answers and what it is made of."""

    process: subprocess.Popen
    base_url: str
    log: Path
    proxy: bool

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def gunicorn_master(self) -> int:
        master = gunicorn_master(self.process.pid)
        assert master is not None, f"no gunicorn under pid {self.process.pid}:\n{self.log_text()[-2000:]}"
        return master

    def workers(self) -> list[int]:
        return worker_pids(self.gunicorn_master())

    def gunicorn_address(self) -> str:
        """gunicorn's own address: its unix socket behind nginx, else the public one."""
        if not self.proxy:
            return self.base_url
        argv = cmdline(self.gunicorn_master())
        return argv[argv.index("--bind") + 1]

    def booted_workers(self) -> int:
        return self.log_text().count("Booting worker")


def serve_env(store_dir: Path, port: int, workers: int, threads: int, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASHION16_")}
    return {**env, "FASHION16_BIND": f"127.0.0.1:{port}", "FASHION16_STORE_DIR": str(store_dir),
            "FASHION16_CATALOGS": CATALOG, "FASHION16_DEFAULT_CATALOG": CATALOG, "FASHION16_WORKERS": str(workers),
            "FASHION16_THREADS": str(threads), "FASHION16_LOG_LEVEL": "info", **(extra or {})}


def wait_healthy(process: subprocess.Popen, base_url: str, log: Path, seconds: float = BOOT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if HttpClient(base_url, timeout=5).send(request_bytes("GET", "/api/health")).status == 200:
                return
        except (OSError, Dropped):
            pass
        time.sleep(0.2)
    raise AssertionError(f"serve did not answer within {seconds} s:\n{log.read_text()[-3000:]}")


@contextmanager
def deployment(store_dir: Path, log: Path, proxy: bool = True, workers: int = 1, threads: int = 2,
               env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """`python -m app serve` on a free port until the block ends; then SIGTERM, and it must exit 0."""
    port = free_port()
    argv = [sys.executable, "-m", "app", "serve"] + ([] if proxy else ["--no-proxy"])
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=serve_env(store_dir, port, workers, threads, env),
                                   stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base_url, log)
        yield Deployment(process, base_url, log, proxy)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, f"serve exited with {code}:\n{log.read_text()[-3000:]}"
