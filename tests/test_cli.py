"""`python -m app` as a user runs it: real processes, the real model and the small real index."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.cli import parser
from app.config import ROOT
from app.data import CLASS_NAMES
from app.index_store import read_index


def run_app(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def command_paths(p: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command the parser knows, so a new one is covered without editing this file."""
    found = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(*prefix, name), *command_paths(sub, (*prefix, name))]
    return found


def only_error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error:` line a known failure prints; TensorFlow's start-up log lines may surround it."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_every_command_has_help():
    paths = [(), *command_paths(parser())]
    assert {("index", "build"), ("index", "info"), ("index", "verify"), ("search",), ("photo-study",)} <= set(paths)
    for path in paths:
        result = run_app(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        assert result.stdout.startswith("usage: python -m app" + "".join(f" {p}" for p in path)), path


def test_index_info_describes_the_small_index(small_index_path):
    text = run_app("index", "info", "--index", small_index_path)
    assert text.returncode == 0, text.stderr
    assert "3000 items" in text.stdout and "256 bits" in text.stdout
    data = run_app("index", "info", "--index", small_index_path, "--json")
    info = json.loads(data.stdout)
    assert info["items"] == 3000 and info["bits"] == 256 and len(info["categories"]) == 10
    assert sum(c["items"] for c in info["categories"]) == 3000


def test_index_verify_passes_on_the_small_index(small_index_path, model_path):
    result = run_app("index", "verify", "--index", small_index_path, "--model", model_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{small_index_path}: OK (3000 items, 256 bits, matches the model)"


def test_search_json_from_the_environment(small_index_path, model_path, fmnist, tmp_path):
    image = tmp_path / "query.png"
    Image.fromarray(fmnist.x_test[0]).save(image)
    env = {"FASHION16_INDEX": str(small_index_path), "FASHION16_MODEL": str(model_path)}
    result = run_app("search", image, "--json", "--k", 7, "--mode", "soft", env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["mode"] == "soft" and len(payload["results"]) == 7
    assert payload["category"]["name"] in CLASS_NAMES
    sims = [r["similarity"] for r in payload["results"]]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    assert {r["category"] for r in payload["results"]} <= set(payload["searched_categories"])


@pytest.mark.parametrize("command", [("index", "info"), ("search", "query.png")])
def test_missing_index_is_one_error_line_and_exit_2(command, model_path, tmp_path):
    Image.new("L", (28, 28)).save(tmp_path / "query.png")
    missing = tmp_path / "nowhere.h5"
    args = [tmp_path / a if a.endswith(".png") else a for a in command]
    result = run_app(*args, "--index", missing, *(["--model", model_path] if "search" in command else []))
    assert result.returncode == 2
    line = only_error_line(result)
    assert line.startswith(f"error: index not found: {missing}") and "python -m app index build" in line


def test_folder_gallery_builds_an_index_with_labels_from_folder_names(fmnist, model_path, tmp_path):
    """Trouser/ and "ankle boot"/ files get those labels, loose files the model's guess; junk is skipped."""
    shop = tmp_path / "shop"
    for folder, label in (("Trouser", 1), ("ankle boot", 9), (".", 0)):
        (shop / folder).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(fmnist.y_test == label)[:4]:
            Image.fromarray(255 - fmnist.x_test[i]).convert("RGB").save(shop / folder / f"item{i}.jpg")
    (shop / "broken.jpg").write_text("not a photo")
    out = tmp_path / "shop.h5"
    result = run_app("index", "build", "--gallery", shop, "--out", out, "--model", model_path, "--bits", 64)
    assert result.returncode == 0, result.stderr
    assert "skipped broken.jpg" in result.stderr and "12 items" in result.stdout
    index = read_index(out)
    assert index.source == "folder" and Path(index.root) == shop.resolve() and len(index.paths) == 12
    labels = dict(zip(index.paths, index.labels.tolist()))
    assert {labels[p] for p in labels if p.startswith("Trouser/")} == {1}
    assert {labels[p] for p in labels if p.startswith("ankle boot/")} == {9}
    assert {labels[p] for p in labels if "/" not in p} == {-1}


def test_photo_study_writes_its_report(model_path, tmp_path):
    out = tmp_path / "study.json"
    result = run_app("photo-study", "--n", 12, "--json", out, "--model", model_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["n"] == 12 and set(report["variants"]) >= {"photo", "on_white", "jpeg"}
    assert "clean" in result.stdout and "photo" in result.stdout


def test_train_writes_a_model_its_card_and_curves(fmnist, tmp_path):
    """A short real run: the saved file serves, and the card describes that very file."""
    from app.model import Embedder

    out = tmp_path / "quick.keras"
    result = run_app("train", "--out", out, "--epochs", 2, "--limit", 1200)
    assert result.returncode == 0, result.stderr
    assert "Epoch 2/2" in result.stdout and "Done in" in result.stdout
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["epochs"] == 2 and card["training"]["images"] == 1200
    assert card["training"]["train_seconds"] > 0 and "conv16" in card["architecture"]
    matrix = np.array(card["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1200
    probs, embeddings = Embedder(out)(fmnist.x_test[:1200])
    assert card["test_accuracy"] == pytest.approx((probs.argmax(1) == fmnist.y_test[:1200]).mean())
    assert card["test_accuracy"] == pytest.approx(np.trace(matrix) / 1200)
    assert list(card["per_class_accuracy"]) == list(CLASS_NAMES)
    assert all(len(card["history"][key]) == 2 for key in ("loss", "accuracy", "val_loss", "val_accuracy"))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    with Image.open(out.with_name("quick_history.png")) as curves:
        assert curves.format == "PNG" and curves.width > 400
