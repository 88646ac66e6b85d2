"""`python -m app` as a user runs it, in-process (``main(argv)``) where a subprocess is not the point:
the real models, real photos and real stores."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.cli import main, parser
from app.fashion_mnist import CLASS_NAMES
from app.settings import ROOT
from app.stores import Hdf5Store, NewItems


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
    assert code == 0 and "catalog fashion-mnist version 1, 2000 items" in out and "256 bits" in out
    code, out, _ = run(capsys, "index", "info", "--catalog", "photos", "--json")
    info = json.loads(out)
    assert info["items"] == 400 and info["model"]["file"] == "photos.tflite" and len(info["categories"]) == 10
    assert sum(c["items"] for c in info["categories"]) == 400 and info["next_id"] == 400 and info["version"] == 1


def test_index_verify_checks_the_store_against_its_model(capsys, env_stores):
    code, out, _ = run(capsys, "index", "verify", "--catalog", "photos")
    assert code == 0 and out.strip() == (f"hdf5:{env_stores / 'photos'}: OK (catalog photos version 1, 400 items, "
                                         f"256 bits, digest and every code checked, matches photos.tflite)")


def test_verify_refuses_a_store_whose_categories_are_not_its_models(capsys, env_stores, tmp_path):
    """A well-formed store (its digests agree) whose category names differ from its model's is refused."""
    snap = Hdf5Store(env_stores / "photos").snapshot()
    store = Hdf5Store(tmp_path / "photos")
    writer = store.rebuild(snap.manifest.with_(class_names=("Bag",) + snap.manifest.class_names[1:]))
    got = snap.items(snap.ids())
    writer.add(NewItems(got.embeddings, got.categories, got.labels, got.hashes, got.paths))
    writer.commit()
    code, _, err = run(capsys, "index", "verify", "--store", store.folder)
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
    assert payload["catalog_version"] == 1
    sims = [r["similarity"] for r in payload["results"]]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    assert {r["category"] for r in payload["results"]} <= set(payload["searched_categories"])
    if catalog == "photos":
        assert payload["category"]["name"] == "Shoes" and all("path" in r for r in payload["results"])
    for r in payload["results"]:  # the API's shape: the item's picture on a server serving this catalog
        assert re.fullmatch(f"/images/{catalog}/{r['id']}\\?v=[0-9a-f]{{16}}", r["image_url"])
    assert payload["box"] is None and payload["category_filter"] is None
    code, out, _ = run(capsys, "search", path, "--catalog", catalog, "--k", 3)
    assert code == 0 and out.count(" similarity ") == 3 and "timings (ms)" in out


def test_search_one_category_and_one_part_of_the_picture(capsys, env_stores, query_photo, tmp_path):
    path = tmp_path / "shoes.jpg"
    path.write_bytes(query_photo)
    code, out, _ = run(capsys, "search", path, "--json", "--category", "Hat", "--box", "0.25,0,0.5,1", "--k", 4)
    payload = json.loads(out)
    assert code == 0 and payload["mode"] == "soft"  # the photo catalog's default, from its model card
    assert payload["category_filter"] == "Hat" and {r["category"] for r in payload["results"]} == {"Hat"}
    assert payload["box"] == "0.25,0,0.5,1"
    code, _, err = run(capsys, "search", path, "--category", "Socks")
    assert code == 2 and err.startswith("error: --category must be one the photos catalog has items in (Dress,")
    code, _, err = run(capsys, "search", path, "--box", "0,0,2,1")
    assert code == 2 and err.strip() == ("error: box must lie inside the picture (x + w and y + h at most 1); "
                                         "got '0,0,2,1'")


@pytest.mark.parametrize("make, says", [
    (lambda d: d, "is a folder; give one image file"),
    (lambda d: d / "missing.jpg", "missing.jpg: no such file"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "the file is not an image"),
])
def test_search_mistakes_are_one_error_line(capsys, env_stores, tmp_path, make, says):
    code, out, err = run(capsys, "search", make(tmp_path))
    assert code == 2 and not out and err.count("\n") == 1 and err.startswith("error: ") and says in err


def test_bench_without_its_requirements_is_one_line_naming_the_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if matplotlib were not installed
    code, _, err = run(capsys, "bench", "--quick")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: the benchmarks need matplotlib") and "-m pip install -r bench/requirements.txt" in err


@pytest.mark.parametrize("command", [("index", "info"), ("search", "query.png"), ("index", "verify"),
                                     ("index", "add", "query.png"), ("index", "remove", "7")])
def test_missing_store_is_one_error_line_and_exit_2(capsys, monkeypatch, tmp_path, command):
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path))
    Image.new("L", (28, 28)).save(tmp_path / "query.png")
    args = [tmp_path / a if a.endswith(".png") else a for a in command]
    code, _, err = run(capsys, *args, "--catalog", "shop")
    assert code == 2
    assert err.strip() == (f"error: catalog shop: no store at {tmp_path / 'shop'}; build it with "
                           f"`python -m app index build --catalog shop --gallery DIR`")


@pytest.mark.parametrize("name", ["../../tmp/x", "a_b", "Shop"])
def test_catalog_names_are_checked_before_anything_is_written(capsys, monkeypatch, tmp_path, name):
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path / "stores"))
    code, _, err = run(capsys, "index", "build", "--catalog", name, "--gallery", tmp_path)
    assert code == 2 and err.startswith("error: catalog names are 1-40 lower-case letters")
    assert not (tmp_path / "stores").exists() and not (tmp_path.parent / "x").exists()


def make_shop(folder, test_photos, chosen: dict[str, int], per: int = 3, offset: int = 0) -> None:
    for name, label in chosen.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(test_photos.labels == label)[offset:offset + per]:
            (folder / name / f"item{i}.jpg").write_bytes(test_photos.read(int(i)))


def test_a_shop_folder_becomes_a_catalog(capsys, monkeypatch, tmp_path, test_photos, settings):
    """Sub-folders named after categories ("Shoes/", "t-shirts/", "outwear/") label their photos; loose ones
    are filed by the model's guess; a folder that names no category is said, with how its photos were
    filed; unreadable files are skipped and named; the store is served as a catalog."""
    shop = tmp_path / "shop"
    make_shop(shop, test_photos, {"Shoes": 6, "t-shirts": 9, "outwear": 3, ".": 7, "Socks": 6})
    (shop / "broken.jpg").write_text("not a photo")
    (shop / "notes.txt").write_text("ignored: not an image file name")
    stores = tmp_path / "stores"
    monkeypatch.setenv("FASHION16_STORE_DIR", str(stores))
    code, _, err = run(capsys, "index", "build", "--catalog", "shop", "--gallery", shop, "--bits", 64, "--strict")
    assert code == 2 and "Socks/ (3 photos)" in err and not (stores / "shop").exists()
    code, out, err = run(capsys, "index", "build", "--catalog", "shop", "--gallery", shop, "--bits", 64)
    assert code == 0, err
    assert "skipped broken.jpg: the file is not an image" in err and "version 1, 15 items" in out
    assert "1 unreadable files skipped" in out
    assert "folder Socks/ is not a category of the model: its 3 photos were filed by the model's guess (Shoes" in err
    snap = Hdf5Store(stores / "shop").snapshot()
    assert snap.manifest.catalog == "shop" and snap.manifest.source == "folder"
    assert snap.manifest.model_file == "photos.tflite" and snap.hasher.bits == 64
    got = snap.items(snap.ids())
    labels = dict(zip(got.paths, got.labels.tolist()))
    names = snap.manifest.class_names
    assert {labels[p] for p in labels if p.startswith("Shoes/")} == {names.index("Shoes")}
    assert {labels[p] for p in labels if p.startswith("t-shirts/")} == {names.index("T-shirt")}
    assert {labels[p] for p in labels if p.startswith("outwear/")} == {names.index("Outerwear")}
    assert {labels[p] for p in labels if "/" not in p or p.startswith("Socks/")} == {-1}  # the model's guess
    for name in ("photos", "fashion-mnist"):
        shutil.copytree(settings.store_dir / name, stores / name)
    code, out, _ = run(capsys, "search", shop / "Shoes" / sorted(p.name for p in (shop / "Shoes").iterdir())[0],
                       "--catalog", "shop", "--json", "--k", 3)
    assert code == 0 and json.loads(out)["results"][0]["similarity"] > 0.999


def test_a_rebuild_keeps_the_ids_of_unchanged_photos(capsys, monkeypatch, tmp_path, test_photos):
    """One photo added to the folder and the catalog rebuilt: every other photo keeps its id (ids never shift)."""
    shop = tmp_path / "shop"
    make_shop(shop, test_photos, {"Shoes": 6, "Dress": 0})
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path / "stores"))
    assert run(capsys, "index", "build", "--catalog", "shop", "--gallery", shop)[0] == 0
    before = Hdf5Store(tmp_path / "stores" / "shop").snapshot().keys()
    (shop / "Dress" / "000-new.jpg").write_bytes(test_photos.read(int(np.flatnonzero(test_photos.labels == 0)[5])))
    code, out, _ = run(capsys, "index", "build", "--catalog", "shop", "--gallery", shop)
    assert code == 0 and "version 2, 7 items: 1 added, 0 removed, 6 unchanged (ids kept)" in out
    after = Hdf5Store(tmp_path / "stores" / "shop").snapshot().keys()
    assert {p: after[p] for p in before} == before and after["Dress/000-new.jpg"][0] == 6


def test_index_add_and_remove_change_a_catalog_in_place(capsys, monkeypatch, tmp_path, test_photos):
    """Only new or changed photos are embedded; removal by id or path; each command is one new version."""
    shop = tmp_path / "shop"
    make_shop(shop, test_photos, {"Shoes": 6, "Dress": 0})
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path / "stores"))
    assert run(capsys, "index", "build", "--catalog", "shop", "--gallery", shop)[0] == 0
    make_shop(shop, test_photos, {"Hat": 1}, per=2)
    code, out, err = run(capsys, "index", "add", "--catalog", "shop", shop)
    assert code == 0 and "version 2, 8 items: 2 added, 0 removed, 6 unchanged (ids kept)" in out, err
    assert "adding to shop" in err  # progress, then the summary
    hat = sorted((shop / "Hat").iterdir())[0]
    code, out, _ = run(capsys, "search", hat, "--catalog", "shop", "--json", "--k", 1)
    first = json.loads(out)["results"][0]
    assert first["path"] == f"Hat/{hat.name}" and first["similarity"] >= 0.99 and first["id"] in (6, 7)
    changed = sorted((shop / "Shoes").iterdir())[0]
    changed.write_bytes(test_photos.read(int(np.flatnonzero(test_photos.labels == 6)[10])))
    code, out, _ = run(capsys, "index", "add", "--catalog", "shop", changed, sorted((shop / "Dress").iterdir())[0])
    assert code == 0 and "version 3, 8 items: 1 added, 1 removed, 1 unchanged (ids kept)" in out
    code, out, _ = run(capsys, "index", "remove", "--catalog", "shop", "1", shop / "Hat")
    assert code == 0 and "version 4, 5 items: 0 added, 3 removed" in out
    code, _, err = run(capsys, "index", "remove", "--catalog", "shop", "1", "Dress/nothing.jpg")
    assert code == 2 and "has no item '1', 'Dress/nothing.jpg'" in err
    code, _, err = run(capsys, "index", "add", "--catalog", "shop", tmp_path)
    assert code == 2 and "is not inside the catalog's folder" in err
    code, out, _ = run(capsys, "index", "compact", "--catalog", "shop")
    assert code == 0 and "version 5, 5 items in one segment" in out
    assert run(capsys, "index", "verify", "--catalog", "shop")[0] == 0


def test_built_in_catalog_is_built_from_its_own_source(capsys, monkeypatch, tmp_path):
    """`index build --catalog fashion-mnist` needs no --gallery: Fashion-MNIST's training images (here the first
    500), each named by its place in the data set so a rebuild keeps every id."""
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path))
    code, out, err = run(capsys, "index", "build", "--catalog", "fashion-mnist", "--bits", 32, "--limit", 500)
    assert code == 0, err
    assert "Built catalog fashion-mnist" in out and "version 1, 500 items" in out
    assert "indexing fashion-mnist" in err and "images/s" in err  # progress, then the summary
    snap = Hdf5Store(tmp_path / "fashion-mnist").snapshot()
    assert snap.manifest.model_file == "fashion16.tflite" and snap.items([0, 499]).paths == ("train/0", "train/499")
    code, out, _ = run(capsys, "index", "build", "--catalog", "fashion-mnist", "--bits", 32, "--limit", 500)
    assert code == 0 and "500 unchanged (ids kept)" in out
    code, _, err = run(capsys, "index", "build", "--catalog", "fashion-mnist", "--model", "photos")
    assert code == 2 and "is made with model fashion16" in err


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
def test_a_shop_trains_its_own_categories_then_builds_and_searches_its_catalog(capsys, tmp_path, monkeypatch):
    """The photo recipe end to end (``train --catalog NAME --data FOLDER``): MobileNetV2 with torchvision's
    ImageNet weights, the shop's garment masks computed, backgrounds replaced, the mask head trained, one epoch
    on a shop's three category folders, saved at the serving size, converted to int8, with its card and curves;
    then ``index build --model NAME`` files the shop's photos under the
    folder names and a search answers in those categories."""
    from app.catalog import open_catalog
    from app.photo_dataset import load_photos
    from app.runtime import LiteRTModel
    from app.settings import Settings

    photos = load_photos("train")
    shop, gallery = tmp_path / "shop-photos", tmp_path / "gallery"
    for folder, label in (("Bags", 1), ("Boots", 6), ("Gowns", 0)):  # a shop's own names for its categories
        rows = np.flatnonzero(photos.labels == label)
        for n, row in enumerate(rows[:8]):
            (shop / folder).mkdir(parents=True, exist_ok=True)
            (shop / folder / f"{n}.jpg").write_bytes(photos.read(int(row)))
        (gallery / folder.lower()).mkdir(parents=True, exist_ok=True)
        for n, row in enumerate(rows[8:12]):
            (gallery / folder.lower() / f"{n}.jpg").write_bytes(photos.read(int(row)))
    monkeypatch.setenv("FASHION16_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FASHION16_STORE_DIR", str(tmp_path / "stores"))
    out = tmp_path / "models" / "shop.keras"
    code, text, _ = run(capsys, "train", "--catalog", "shop", "--data", shop, "--out", out, "--epochs", 1)
    assert code == 0 and "Fine-tuning MobileNetV2 on 18 photos of 3 categories (1 epochs" in text, text
    assert "Done in" in text and "index build --catalog shop --gallery DIR --model shop" in text
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["class_names"] == ["Bags", "Boots", "Gowns"] and card["outputs"]["probs"] == 3
    assert card["training"]["images"] == 18 and card["weights"]["sha256"].startswith("b0353104")
    assert len(card["confusion_matrix_test"]) == 3 and np.sum(card["confusion_matrix_test"]) == 3  # one each
    assert card["default_mode"] == ("soft" if card["soft_routing_tuning"]["precision_soft"] >
                                    card["soft_routing_tuning"]["precision_routed"] else "routed")
    model = LiteRTModel(out.with_suffix(".tflite"))
    # no committed masks for a shop's photos: U-2-Net-p made them (app/training/masks.py), so the garment-first
    # parts are there: fine-tuned and ImageNet features pooled on the garment, and its colour histogram (18 photos
    # are too few to fit the 512-d projection)
    assert card["masks"]["computed"].startswith("at training time") and card["masks"]["sha256"].startswith("309c8469")
    assert "int8" in card["files"]["serving"]["quantization"] and card["outputs"]["embedding"] == 1280 + 1280 + 125
    assert model.input_shape == (192, 192, 3) and model.embedding_dim == 1280 + 1280 + 125
    assert out.with_name("shop_history.png").is_file()

    code, _, err = run(capsys, "index", "build", "--catalog", "shop", "--gallery", gallery, "--model", "shop")
    assert code == 0, err
    catalog = open_catalog(Settings.from_env(), "shop")
    assert tuple(catalog.snapshot.manifest.class_names) == ("Bags", "Boots", "Gowns") and len(catalog.snapshot) == 12
    found = catalog.search((gallery / "boots" / "0.jpg").read_bytes(), k=4, mode="direct")
    assert found.hits[0].path.endswith("boots/0.jpg") and found.hits[0].category == 1


@pytest.mark.parametrize("args, says", [(("--catalog", "shop"), "train --catalog shop needs --data FOLDER"),
                                        (("--catalog", "Shop!", "--data", "."), "catalog names are"),
                                        (("--catalog", "fashion-mnist", "--data", "."), "name it with --catalog")])
def test_train_names_what_is_missing(capsys, args, says):
    code, _, err = run(capsys, "train", *args)
    assert code == 2 and err.startswith("error: ") and says in err and len(err.strip().splitlines()) == 1


def test_a_training_folder_splits_the_same_way_every_time(tmp_path):
    from app.photo_dataset import folder_splits

    for category, n in (("bags", 12), ("socks", 5)):
        (tmp_path / category).mkdir()
        for i in range(n):
            (tmp_path / category / f"{i:02d}.png").write_bytes(b"not read here")
    names, splits = folder_splits(tmp_path)
    assert names == ("bags", "socks")
    counts = {split: np.bincount(s.labels, minlength=2).tolist() for split, s in splits.items()}
    assert counts == {"train": [10, 3], "validation": [1, 1], "test": [1, 1]}
    assert sorted(p for s in splits.values() for p in s.paths) == sorted(
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))  # every photo once
    _, again = folder_splits(tmp_path)
    assert all(again[split].paths == splits[split].paths for split in splits)
    (tmp_path / "hats").mkdir()
    (tmp_path / "hats" / "1.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="category 'hats' has 1 photo"):
        folder_splits(tmp_path)


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


@pytest.mark.parametrize("args", [("evaluate", "--limit", "0"), ("train", "--epochs", "0"),
                                  ("search", "x.jpg", "--k", "-1"), ("index", "build", "--threads", "two")])
def test_counts_that_cannot_be_are_refused_by_argparse(capsys, args):
    with pytest.raises(SystemExit) as done:
        main(list(args))
    err = capsys.readouterr().err
    assert done.value.code == 2 and re.search(r"error: argument --\w+: must be (at least 1|a whole number)", err)
