"""The Dockerfile and setup script, checked statically (Docker cannot run here).

What can break without Docker is checked: the image installs nginx, copies every file
serving reads (and none that .dockerignore drops), builds its store with a command the CLI
accepts, runs `python -m app serve` as a non-root user, and keeps its HEALTHCHECK.
"""
from __future__ import annotations

import fnmatch
import json
import shlex
from pathlib import Path

from app.cli import parser
from app.proxy import TEMPLATE

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    steps, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            steps.append(current.strip())
            current = ""
    return [(step.split(None, 1)[0].upper(), step.split(None, 1)[1]) for step in steps]


def test_the_image_runs_serve_as_a_non_root_user_with_nginx_installed():
    steps = dockerfile()
    ops = [op for op, _ in steps]
    cmd = json.loads(next(args for op, args in steps if op == "CMD"))
    assert cmd == ["python", "-m", "app", "serve"]
    parser().parse_args(cmd[3:])  # the CLI accepts it (SystemExit otherwise)
    apt = " ".join(args for op, args in steps if op == "RUN" and "apt-get install" in args)
    assert "nginx" in apt.split() and "dataset-fashion-mnist" in apt.split()
    user = next(args for op, args in steps if op == "USER")
    assert user not in ("root", "0") and ops.index("USER") < ops.index("CMD")
    assert ops.index("USER") > max(i for i, (op, args) in enumerate(steps) if op == "RUN" and "apt-get" in args)
    health = next(args for op, args in steps if op == "HEALTHCHECK")
    assert "/api/health" in health and "Settings.from_env().port" in health  # the one listen-address rule


def test_the_image_copies_what_serving_reads_and_builds_its_store_with_a_real_command():
    steps = dockerfile()
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    copied = []
    for args in (a for op, a in steps if op == "COPY"):
        *sources, _ = args.split()
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"the Dockerfile copies {source}, which does not exist"
            assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), f"{source} is in .dockerignore"
            copied.append(path)
    needed = {"requirements.txt", "app", "models", "templates", "static", "wsgi.py", "gunicorn.conf.py",
              TEMPLATE.relative_to(ROOT).parts[0]}
    assert needed <= set(copied), needed - set(copied)
    builds = [shlex.split(args) for op, args in steps if op == "RUN" and "python -m app index" in args]
    assert builds, "the image builds no store"
    for argv in builds:
        parser().parse_args(argv[argv.index("app") + 1:])  # SystemExit on an option the CLI does not have
    # Both built-in catalogs are built into the image, so the photos they index must be in it.
    from app.photo_dataset import CATALOG_SPLITS

    assert {f"datasets/clothing-photos/{split}" for split in CATALOG_SPLITS} <= set(copied)
    assert any("index ensure" in " ".join(argv) for argv in builds)
    assert not any("FASHION16_CATALOGS" in args for op, args in steps if op == "ENV")  # it serves them all


def test_setup_installs_nginx():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    line = next(line for line in setup.splitlines() if line.startswith("packages=("))
    assert "nginx" in line.split("(")[1].split(")")[0].split()
