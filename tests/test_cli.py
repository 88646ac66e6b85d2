"""`python -m app` as a user runs it, in-process (``main(argv)``) where a subprocess is not the point:
the real models, real photos and real stores."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.cli import main, parser
from app.fashion_mnist import CLASS_NAMES
from app.photo_dataset import load_photos
from app.settings import ROOT
from app.store import read_store


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def env_stores(monkeypatch, store_dir):
    """The CLI reads FASHION16_* like every entry point: point it at the small stores."""
    monkeypatch.setenv("FASHION16_STORE_DIR", str(store_dir))
    return store_dir


def command_paths(p: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command the parser knows, so a new one is covered without editing this file."""
    found = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(*prefix, name), *command_paths(sub, (*prefix, name))]
    return found


def test_every_command_has_help(capsys):
    paths = [(), *command_paths(parser())]
    assert {("index", "build"), ("index", "info"), ("index", "verify"), ("search",), ("train",), ("convert",),
            ("evaluate",), ("serve",)} <= set(paths)
    for path in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0, path
        assert capsys.readouterr().out.startswith("usage: python -m app" + "".join(f" {p}" for p in path)), path


def test_help_runs_as_a_real_process_without_tensorflow():
    """The entry point itself: `python -m app --help` answers quickly, loading neither TensorFlow nor a model."""
    code = "import runpy, sys; sys.argv = ['app', '--help']\ntry: runpy.run_module('app', run_name='__main__')\n" \
           "except SystemExit: pass\nprint('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "usage: python -m app" in done.stdout and done.stdout.strip().endswith("False")


def test_index_info_describes_a_store(capsys, env_stores):
    code, out, _ = run(capsys, "index", "info", "--catalog", "fashion-mnist")
    assert code == 0 and "catalog fashion-mnist, 2000 items" in out and "256 bits" in out
    code, out, _ = run(capsys, "index", "info", "--catalog", "photos", "--json")
    info = json.loads(out)
    assert info["items"] == 400 and info["model"]["file"] == "photos.tflite" and len(info["categories"]) == 10
    assert sum(c["items"] for c in info["categories"]) == 400


def test_index_verify_checks_the_store_against_its_model(capsys, env_stores):
    code, out, _ = run(capsys, "index", "verify", "--catalog", "photos")
    assert code == 0 and out.strip() == f"{env_stores / 'photos.h5'}: OK (400 items, 256 bits, matches photos.tflite)"


def test_verify_refuses_a_store_whose_category_names_were_edited(capsys, env_stores, tmp_path, monkeypatch):
    from app.store import CatalogStore, Manifest, write_store

    store = read_store(env_stores / "photos.h5")
    renamed = Manifest(**{**vars(store.manifest), "class_names": ("Bag",) + store.class_names[1:]})
    fields = {k: getattr(store, k) for k in ("hasher", "ids", "categories", "labels", "codes", "embeddings",
                                             "images", "paths")}
    write_store(CatalogStore(manifest=renamed, **fields), tmp_path / "photos.h5")
    code, _, err = run(capsys, "index", "verify", "--store", tmp_path / "photos.h5")
    assert code == 2 and "its categories (Bag, Hat" in err and "are not those of its model photos.tflite" in err


@pytest.mark.parametrize("catalog, image", [("fashion-mnist", "fashion"), ("photos", "photo")])
def test_search_json(capsys, env_stores, fmnist, query_photo, tmp_path, catalog, image):
    path = tmp_path / "query"
    if image == "fashion":
        Image.fromarray(fmnist.x_test[0]).save(path, "PNG")
    else:
        path.write_bytes(query_photo)
    code, out, _ = run(capsys, "search", path, "--catalog", catalog, "--json", "--k", 7, "--mode", "soft")
    assert code == 0
    payload = json.loads(out)
    assert payload["catalog"] == catalog and payload["mode"] == "soft" and len(payload["results"]) == 7
    sims = [r["similarity"] for r in payload["results"]]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    assert {r["category"] for r in payload["results"]} <= set(payload["searched_categories"])
    if catalog == "photos":
        assert payload["category"]["name"] == "Shoes" and all("path" in r for r in payload["results"])
    code, out, _ = run(capsys, "search", path, "--catalog", catalog, "--k", 3)
    assert code == 0 and out.count(" similarity ") == 3 and "timings (ms)" in out


@pytest.mark.parametrize("command", [("index", "info"), ("search", "query.png"), ("index", "verify")])
def test_missing_store_is_one_error_line_and_exit_2(capsys, monkeypatch, tmp_path, command):
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path))
    Image.new("L", (28, 28)).save(tmp_path / "query.png")
    args = [tmp_path / a if a.endswith(".png") else a for a in command]
    code, _, err = run(capsys, *args, "--catalog", "shop")
    assert code == 2
    assert err.strip() == (f"error: catalog store not found: {tmp_path / 'shop.h5'}; build it with "
                           f"`python -m app index build --catalog shop`")


def test_a_shop_folder_becomes_a_catalog(capsys, monkeypatch, tmp_path, test_photos, settings):
    """Sub-folders named after categories ("Shoes/", "t-shirts/", "outwear/") label their photos; loose ones
    are filed by the model's guess; unreadable files are skipped and named; the store is served as a catalog."""
    shop = tmp_path / "shop"
    chosen = {"Shoes": 6, "t-shirts": 9, "outwear": 3, ".": 7}
    for folder, label in chosen.items():
        (shop / folder).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(test_photos.labels == label)[:3]:
            (shop / folder / f"item{i}.jpg").write_bytes(test_photos.read(int(i)))
    (shop / "broken.jpg").write_text("not a photo")
    (shop / "notes.txt").write_text("ignored: not an image file name")
    stores = tmp_path / "stores"
    monkeypatch.setenv("FASHION16_STORE_DIR", str(stores))
    code, out, err = run(capsys, "index", "build", "--catalog", "shop", "--gallery", shop, "--bits", 64)
    assert code == 0, err
    assert "skipped broken.jpg: the file is not an image" in err and "12 items" in out and "1 unreadable" in out
    store = read_store(stores / "shop.h5")
    assert store.manifest.catalog == "shop" and store.manifest.source == "folder"
    assert store.manifest.model_file == "photos.tflite" and store.bits == 64
    labels = dict(zip(store.paths, store.labels.tolist()))
    names = store.class_names
    assert {labels[p] for p in labels if p.startswith("Shoes/")} == {names.index("Shoes")}
    assert {labels[p] for p in labels if p.startswith("t-shirts/")} == {names.index("T-shirt")}
    assert {labels[p] for p in labels if p.startswith("outwear/")} == {names.index("Outerwear")}
    assert {labels[p] for p in labels if "/" not in p} == {-1}  # filed under the model's guess
    for name in ("photos", "fashion_mnist"):
        shutil.copy(settings.store_dir / f"{name}.h5", stores)
    code, out, _ = run(capsys, "search", shop / "Shoes" / sorted(p.name for p in (shop / "Shoes").iterdir())[0],
                       "--catalog", "shop", "--json", "--k", 3)
    assert code == 0 and json.loads(out)["results"][0]["similarity"] > 0.999


def test_built_in_catalog_is_built_from_its_own_source(capsys, monkeypatch, tmp_path):
    """`index build --catalog fashion-mnist` needs no --gallery: 60,000 images through the LiteRT model."""
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path))
    code, out, err = run(capsys, "index", "build", "--catalog", "fashion-mnist", "--gallery", "fashion-mnist",
                         "--bits", 32)
    assert code == 0, err
    assert "catalog fashion-mnist, 60000 items, 32 bits, model fashion16.tflite" in out
    assert "indexing fashion-mnist" in err and "images/s" in err  # progress, then the summary
    code, out, _ = run(capsys, "index", "ensure", "--catalog", "fashion-mnist", "--bits", 32)
    assert code == 0 and out.strip().endswith("fashion_mnist.h5 ready")  # a matching store is kept


def test_a_folder_source_that_is_not_there_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path))
    code, _, err = run(capsys, "index", "build", "--catalog", "shop", "--gallery", tmp_path / "none")
    assert code == 2 and err.startswith("error: photo folder not found")
    code, _, err = run(capsys, "index", "build", "--catalog", "shop")
    assert code == 2 and "give its photos with --gallery DIR" in err


def test_photo_study_writes_its_report(capsys, tmp_path):
    out = tmp_path / "study.json"
    code, text, _ = run(capsys, "photo-study", "--n", 12, "--json", out)
    assert code == 0
    report = json.loads(out.read_text())
    assert report["n"] == 12 and set(report["variants"]) >= {"photo", "on_white", "jpeg"}
    assert "clean" in text and "photo" in text


@pytest.mark.slow
@pytest.mark.tensorflow
def test_train_fashion_writes_a_model_its_conversion_card_and_curves(capsys, fmnist, tmp_path):
    """A short real run: the saved files serve, and the card describes those very files."""
    from app.files import file_sha256
    from app.runtime import KerasModel, LiteRTModel

    out = tmp_path / "quick.keras"
    code, text, _ = run(capsys, "train", "--catalog", "fashion-mnist", "--out", out, "--epochs", 2, "--limit", 1200)
    assert code == 0 and "Epoch 2/2" in text and "Done in" in text
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["epochs"] == 2 and card["training"]["images"] == 1200
    assert card["training"]["train_seconds"] > 0 and "conv16" in card["architecture"]
    assert card["files"]["serving"]["sha256"] == file_sha256(out.with_suffix(".tflite"))
    matrix = np.array(card["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1200
    lite = LiteRTModel(out.with_suffix(".tflite"))
    probs, embeddings = lite(np.stack([lite.prepare(x) for x in fmnist.x_test[:1200]]))
    assert card["test_accuracy"] == pytest.approx((probs.argmax(1) == fmnist.y_test[:1200]).mean(), abs=1e-3)
    assert card["test_accuracy"] == pytest.approx(np.trace(matrix) / 1200)
    assert list(card["per_class_accuracy"]) == list(CLASS_NAMES)
    assert all(len(card["history"][key]) == 2 for key in ("loss", "accuracy", "val_loss", "val_accuracy"))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(KerasModel(out)(lite.prepare(fmnist.x_test[0])[None])[1][0], embeddings[0], atol=1e-4)
    with Image.open(out.with_name("quick_history.png")) as curves:
        assert curves.format == "PNG" and curves.width > 400


@pytest.mark.slow
@pytest.mark.tensorflow
def test_train_photos_quick_run(capsys, tmp_path):
    """The photo model's recipe end to end on 40 photos for one epoch: MobileNetV2 with torchvision's ImageNet
    weights, the committed garment masks, backgrounds replaced, the mask head and garment features trained, saved
    at the serving size, converted to int8, with its card and curves."""
    from app.runtime import KerasModel, LiteRTModel

    out = tmp_path / "photos.keras"
    code, text, _ = run(capsys, "train", "--catalog", "photos", "--out", out, "--epochs", 1, "--limit", 40)
    assert code == 0 and "Fine-tuning MobileNetV2 on 40 photos (1 epochs" in text and "Done in" in text
    assert "backgrounds replaced, mask head, garment features" in text
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["images"] == 40 and card["weights"]["sha256"].startswith("b0353104")
    assert card["class_names"][3] == "Outerwear" and len(card["confusion_matrix_test"]) == 10
    assert card["masks"]["sha256"].startswith("309c8469") and "int8" in card["files"]["serving"]["quantization"]
    model = LiteRTModel(out.with_suffix(".tflite"))
    # tuned + garment features + colour histogram (40 photos are too few to fit the 512-d projection)
    assert model.input_shape == (192, 192, 3) and model.embedding_dim == 1280 + 512 + 125
    photo = model.prepare(model.decode(load_photos("test").read(0), 40_000_000))
    _, emb = model.forward_one(photo)
    _, reference = KerasModel(out).forward_one(photo)
    assert abs(np.linalg.norm(emb) - 1) < 0.02 and float(emb @ reference) > 0.9  # int8 close to the float model
    assert out.with_name("photos_history.png").is_file()


def test_convert_writes_a_tflite_beside_the_model(capsys, tmp_path):
    for suffix in (".keras", ".json"):
        shutil.copy(ROOT / "models" / f"fashion16{suffix}", tmp_path / f"f{suffix}")
    code, out, _ = run(capsys, "convert", tmp_path / "f.keras")
    assert code == 0 and out.startswith(f"Wrote {tmp_path / 'f.tflite'}")
    assert (tmp_path / "f.tflite").read_bytes() == (ROOT / "models" / "fashion16.tflite").read_bytes()


def test_bench_is_a_repository_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["bench", "--help"])
    assert done.value.code == 0 and "python -m app bench" in capsys.readouterr().out


def test_settings_errors_are_one_line(capsys, monkeypatch):
    monkeypatch.setenv("FASHION16_MAX_PIXELS", "lots")
    code, _, err = run(capsys, "index", "info")
    assert code == 2 and err.strip() == "error: FASHION16_MAX_PIXELS must be a positive number, got 'lots'"


def test_unknown_catalog_for_evaluate_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--catalog", "shop"])
    assert done.value.code == 2 and "invalid choice: 'shop'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.tensorflow
def test_the_photo_recipe_trains_on_a_shops_folder_of_category_sub_folders(tmp_path):
    """No committed masks for these photos: U-2-Net-p computes them (onnxruntime is a training requirement);
    the sub-folder names become the categories; no test split."""
    from app.photo_dataset import load_folder
    from app.runtime import LiteRTModel
    from app.training.photos import PhotoRecipe, train_photos

    train = load_photos("train")
    shop = tmp_path / "shop"
    for name, label in (("Hats", 1), ("Sneakers", 6), ("Trousers", 4)):
        (shop / name).mkdir(parents=True)
        for i in np.flatnonzero(train.labels == label)[:8]:
            (shop / name / f"{i}.jpg").write_bytes(train.read(i))
    splits = load_folder(shop, validation_every=4)
    assert splits["train"].class_names == ("Hats", "Sneakers", "Trousers")
    assert len(splits["train"]) == 18 and len(splits["validation"]) == 6
    card = train_photos(tmp_path / "shop.keras", PhotoRecipe(epochs=1, batch_size=8), data=splits)
    assert card["class_names"] == ["Hats", "Sneakers", "Trousers"] and "test_accuracy" not in card
    assert card["masks"]["computed"].startswith("at training time") and card["training"]["images"] == 18
    model = LiteRTModel(tmp_path / "shop.tflite")
    probs, emb = model(np.stack([model.prepare(model.decode(splits["validation"].read(i), 40_000_000))
                                 for i in range(6)]))
    assert probs.shape == (6, 3) and emb.shape == (6, 1280 + 512 + 125)
