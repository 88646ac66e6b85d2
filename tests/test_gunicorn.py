"""Deployment: real gunicorn with the shipped gunicorn.conf.py, `python -m app serve`, the Dockerfile.

Docker cannot run here, so the Dockerfile is checked for what can break without it: the
files it copies exist and are not ignored, and its CMD is what these tests start.
"""
from __future__ import annotations

import fnmatch
import importlib
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from app.bench.e2e import Server, free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
BOOT_SECONDS = 180  # each worker loads TensorFlow and the model; CI machines can be slow


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def docker_cmd() -> list[str]:
    return json.loads(next(args for op, args in dockerfile() if op == "CMD"))


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file in the field "image"."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def get_json(url: str, body: bytes | None = None, content_type: str | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if content_type else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


@contextmanager
def server(cmd: list[str], env: dict[str, str], log: Path):
    """Start a server process, yield its base URL once /api/health answers, then stop it and check its exit."""
    port = free_port()
    env = {**os.environ, "FASHION16_BIND": f"127.0.0.1:{port}", "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    env = {k: v.replace("{port}", str(port)) for k, v in env.items()}
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(Server(port, proc), log, BOOT_SECONDS)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, f"unclean exit {code}:\n{log.read_text()}"


@pytest.fixture()
def index_env(model_path, small_index_path) -> dict[str, str]:
    return {"FASHION16_MODEL": str(model_path), "FASHION16_INDEX": str(small_index_path)}


def test_gunicorn_with_the_shipped_config_and_two_workers(tmp_path, index_env, query_png):
    """The Dockerfile's CMD from the repository root, so gunicorn reads ./gunicorn.conf.py as in the image."""
    cmd = [sys.executable, "-m", *docker_cmd()]
    env = {**index_env, "FASHION16_WORKERS": "2", "FASHION16_THREADS": "2"}
    log = tmp_path / "gunicorn.log"
    with server(cmd, env, log) as base:
        health = get_json(base + "/api/health")
        assert health["status"] == "ok" and health["index"]["items"] == 3000
        body, content_type = multipart({"k": "20", "mode": "routed"}, "query.png", query_png)
        # Concurrent requests reach both workers' threads; a worker broken by fork would hang here.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: get_json(base + "/api/search", body, content_type), range(8)))
    text = log.read_text()
    assert text.count("Booting worker") >= 2 and "Using worker: gthread" in text  # config file was read
    for answer in answers:
        sims = [r["similarity"] for r in answer["results"]]
        assert len(sims) == 20 and sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
        assert all(r["image_url"] == f"/images/{r['id']}" for r in answer["results"])
    assert "POST /api/search HTTP/1.1\" 200" in text


def test_serve_command_runs_gunicorn(tmp_path, model_path, small_index_path):
    cmd = [sys.executable, "-m", "app", "serve", "--bind", "127.0.0.1:{port}", "--workers", "1",
           "--model", str(model_path), "--index", str(small_index_path)]
    with server(cmd, {"FASHION16_BIND": "", "FASHION16_THREADS": "1"}, tmp_path / "serve.log") as base:
        assert get_json(base + "/api/health")["model"]["file"] == model_path.name


def test_gunicorn_refuses_to_start_without_an_index(tmp_path, model_path):
    port = free_port()
    env = {**os.environ, "FASHION16_BIND": f"127.0.0.1:{port}", "FASHION16_WORKERS": "1",
           "FASHION16_MODEL": str(model_path), "FASHION16_INDEX": str(tmp_path / "missing.h5")}
    done = subprocess.run([sys.executable, "-m", *docker_cmd()], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=BOOT_SECONDS)
    assert done.returncode != 0
    assert "Fashion-16 cannot start: index not found" in done.stderr
    assert "python -m app index build" in done.stderr


def test_dockerfile_copies_existing_files_and_runs_wsgi_app():
    steps = dockerfile()
    ops = [op for op, _ in steps]
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    assert docker_cmd() == ["gunicorn", "wsgi:app"]
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    copied = []
    for args in (a for op, a in steps if op == "COPY"):
        *sources, dest = args.split()
        for src in sources:
            path = src.rstrip("/")
            assert (ROOT / path).exists(), f"the Dockerfile copies {src}, which does not exist"
            assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), f"{src} is in .dockerignore"
            copied.append(path)
    for needed in ("requirements.txt", "app", "models", "templates", "static", "wsgi.py", "gunicorn.conf.py"):
        assert needed in copied
    assert "gunicorn" in (ROOT / "requirements.txt").read_text()
    run = " ".join(a for op, a in steps if op == "RUN")
    assert "dataset-fashion-mnist" in run and "pip install -r requirements.txt" in run
    assert "python -m app index build" in run
    user = next(a for op, a in steps if op == "USER")
    assert user not in ("root", "0") and ops.index("USER") < ops.index("CMD")
    health = next(a for op, a in steps if op == "HEALTHCHECK")
    assert "/api/health" in health and "urllib" in health


def test_wsgi_exposes_the_app_configured_from_the_environment(monkeypatch, index_env):
    for name, value in index_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.delitem(sys.modules, "wsgi", raising=False)
    app = importlib.import_module("wsgi").app
    assert isinstance(app, Flask) and app.config["INDEX_PATH"] == index_env["FASHION16_INDEX"]
    assert len(app.extensions["fashion16"].searcher.index) == 3000
