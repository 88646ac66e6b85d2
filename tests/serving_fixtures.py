"""Fixtures for the serving tests, loaded with ``pytest_plugins = ["serving_fixtures"]`` (the lead owns conftest.py).

A small real store built once per session, and the shipped deployment (nginx in front of
gunicorn, or gunicorn alone) running per test module; see serving_helpers.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_helpers import Deployment, build_small_store, deployment, png


@pytest.fixture(scope="session")
def serving_store_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serving-stores")
    build_small_store(folder)
    return folder


@pytest.fixture(scope="session")
def query_images() -> list[bytes]:
    """Fashion-MNIST test images (never in the store) as PNG uploads."""
    from app.fashion_mnist import load_fashion_mnist

    data = load_fashion_mnist(download=False)
    return [png(x) for x in data.x_test[:8]]


@pytest.fixture(scope="module")
def proxied(serving_store_dir, tmp_path_factory) -> Iterator[Deployment]:
    """The shipped deployment (nginx in front of gunicorn), one worker with two threads."""
    with deployment(serving_store_dir, tmp_path_factory.mktemp("proxied") / "serve.log") as running:
        yield running


@pytest.fixture(scope="module")
def direct(serving_store_dir, tmp_path_factory) -> Iterator[Deployment]:
    """gunicorn alone (`serve --no-proxy`), one worker with two threads."""
    with deployment(serving_store_dir, tmp_path_factory.mktemp("direct") / "serve.log", proxy=False) as running:
        yield running
