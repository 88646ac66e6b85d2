"""The app factory, its configuration and startup checks, and the HTML pages."""
from __future__ import annotations

import base64
import io
import logging
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from app import create_app
from app.settings import ROOT
from app.stores import Hdf5Store
from app.web.service import StartupError
from store_helpers import copy_catalog

TILE = re.compile(rb'<li class="tile">')
EXTERNAL = re.compile(rb'(?:src|href|action)="(?:https?:)?//')


def post_form(client, data: bytes, filename: str = "garment.png", mode: str = "routed", catalog: str = "fashion-mnist"):
    return client.post("/search", data={"image": (io.BytesIO(data), filename), "mode": mode, "catalog": catalog},
                       content_type="multipart/form-data")


# --- startup ---------------------------------------------------------------------------------------

def refused(caplog, settings) -> str:
    """Create the app expecting a refusal; return the logged reason."""
    with caplog.at_level(logging.ERROR), pytest.raises(StartupError):
        create_app(settings, {"TESTING": True})
    return " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def copy_stores(store_dir: Path, tmp_path: Path) -> Path:
    for store in store_dir.glob("*/manifest.json"):
        shutil.copytree(store.parent, tmp_path / store.parent.name)
    return tmp_path


def test_missing_store_refuses_to_start_naming_the_command(caplog, tmp_path, settings):
    shutil.copytree(settings.store_dir / "fashion-mnist", tmp_path / "fashion-mnist")
    message = refused(caplog, settings.with_(store_dir=tmp_path))
    assert "catalog photos: no store at" in message and "python -m app index build --catalog photos" in message


def test_missing_model_refuses_to_start(caplog, tmp_path, settings):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ROOT / "models" / "photos.tflite", models)
    shutil.copy(ROOT / "models" / "photos.json", models)
    message = refused(caplog, settings.with_(models_dir=models))
    assert "its model" in message and "fashion16.tflite is missing" in message
    assert "python -m app train --catalog fashion-mnist" in message


def test_store_of_another_model_refuses_to_start(caplog, tmp_path, settings):
    stores = copy_stores(settings.store_dir, tmp_path / "stores")
    shutil.rmtree(stores / "photos")
    copy_catalog(Hdf5Store(settings.store_dir / "photos"), Hdf5Store(stores / "photos"), model_sha256="0" * 64)
    message = refused(caplog, settings.with_(store_dir=stores))
    assert "built with model 000000000000" in message and "python -m app index build --catalog photos" in message


def test_a_shop_catalog_in_the_store_folder_is_served_too(tmp_path, settings, catalogs):
    """Any store found beside the built-in ones is one more catalog (its folder is its name)."""
    stores = copy_stores(settings.store_dir, tmp_path)
    copy_catalog(Hdf5Store(stores / "photos"), Hdf5Store(stores / "shop"))
    app = create_app(settings.with_(store_dir=stores), {"TESTING": True})
    body = app.test_client().get("/api/health").get_json()
    assert [c["name"] for c in body["catalogs"]] == ["photos", "fashion-mnist", "shop"]
    served = app.extensions["fashion16"].catalogs
    assert served["shop"].model is served["photos"].model  # one loaded copy of a shared model
    only = create_app(settings.with_(store_dir=stores, catalogs=("shop",)), {"TESTING": True})
    assert [c["name"] for c in only.test_client().get("/api/health").get_json()["catalogs"]] == ["shop"]


def test_catalogs_are_opened_once_per_app_and_share_models(web_app, client, query_png):
    served = web_app.extensions["fashion16"].catalogs
    post_form(client, query_png, catalog="fashion-mnist")
    client.get("/item/fashion-mnist/3")
    assert web_app.extensions["fashion16"].catalogs is served


# --- pages --------------------------------------------------------------------------------------

def test_home_page_has_an_accessible_upload_form(client):
    response = client.get("/")
    html = response.data
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert b'enctype="multipart/form-data"' in html and b'action="/search"' in html
    assert b'<label for="image"' in html and b'type="file" id="image" name="image"' in html
    for mode in (b"routed", b"direct", b"soft"):
        assert b'name="mode" value="' + mode + b'"' in html
    assert b'value="routed" checked' in html and b"<legend>Search mode</legend>" in html
    assert b"<legend>Catalog</legend>" in html and b'name="catalog" value="photos" checked' in html
    assert b'name="catalog" value="fashion-mnist"' in html and b"400 items in 10 categories" in html
    assert b'name="catalog" value="fashion-mnist" checked' in client.get("/?catalog=fashion-mnist").data
    assert not EXTERNAL.search(html), "everything must be served locally"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_static_files_are_served_locally(client):
    css = client.get("/static/style.css")
    assert css.status_code == 200 and b"image-rendering: pixelated" in css.data and b":focus-visible" in css.data
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/favicon.svg").status_code == 200


def test_upload_shows_prediction_and_twenty_ranked_tiles(client, query_png):
    response = post_form(client, query_png, mode="soft")
    html = response.data
    assert response.status_code == 200
    assert len(TILE.findall(html)) == 20
    assert b"Looks like" in html and b"Also possible:" in html and b"(soft mode)" in html
    scores = [float(s) for s in re.findall(rb'<span class="score"[^>]*>([0-9.]+)</span>', html)]
    assert len(scores) == 20 and scores == sorted(scores, reverse=True)
    assert len(re.findall(rb'href="/item/fashion-mnist/\d+\?mode=soft"', html)) == 20
    assert len(re.findall(rb'<img src="/images/fashion-mnist/\d+\?v=[0-9a-f]{16}" alt="[^"]+, catalog item \d+"',
                          html)) == 20
    assert b"in Fashion-MNIST (the paper&#39;s demo)" in html
    assert b"Answered in" in html  # timings, folded away
    assert not EXTERNAL.search(html)


def test_uploaded_image_is_shown_inline_not_stored(client, query_png):
    html = post_form(client, query_png).data.decode()
    src = re.search(r'class="query-image pixelated" src="data:image/png;base64,([^"]+)"', html).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(src))).size == (28, 28)


def test_a_real_photo_gets_photo_results(client, query_photo):
    html = post_form(client, query_photo, "shoes.jpg", catalog="photos").data
    assert len(TILE.findall(html)) == 20 and b'<ol class="grid photos">' in html
    assert b'Looks like <span class="category">Shoes</span>' in html
    assert len(re.findall(rb'<img src="/images/photos/\d+\?v=[0-9a-f]{16}" alt="[^"]+, catalog item \d+"',
                          html)) == 20


def test_large_upload_is_shown_as_a_small_thumbnail(client):
    photo = io.BytesIO()
    Image.new("RGB", (1200, 900), "white").save(photo, format="JPEG")
    html = post_form(client, photo.getvalue(), "photo.jpg", catalog="photos").data.decode()
    src = re.search(r'class="query-image" src="data:image/jpeg;base64,([^"]+)"', html).group(1)
    assert max(Image.open(io.BytesIO(base64.b64decode(src))).size) == 256


@pytest.mark.parametrize("catalog", ["fashion-mnist", "photos"])
def test_more_like_this_searches_with_a_catalog_item(client, catalogs, catalog):
    found = catalogs[catalog]
    item = int(found.snapshot.ids()[42])
    response = client.get(f"/item/{catalog}/{item}?mode=direct")
    html = response.data.decode()
    assert response.status_code == 200 and len(TILE.findall(response.data)) == 20
    assert f'src="/images/{catalog}/{item}?v={found.item(item).hashes[0]}" alt="Catalog item {item}"' in html
    assert "(direct mode)" in html
    assert f'href="/item/{catalog}/{item}?mode=routed"' in html  # the same item in the other modes
    shown = [int(i) for i in re.findall(r'<li class="tile">\s*<a href="/item/[^/]+/(\d+)\?mode=direct"', html)]
    assert item not in shown and len(shown) == 20  # the item itself is left out
    assert shown[0] == found.search(found.item_picture(item), k=2, mode="direct").hits[1].id
    assert client.get(f"/item/{catalog}/{item}").status_code == 200  # mode defaults to routed


def test_bad_upload_reshows_the_form_with_a_message(client):
    response = post_form(client, b"%PDF-1.4 not a picture", "photo.jpg", mode="direct")
    html = response.data
    assert response.status_code == 400
    assert b'role="alert"' in html and b"The file is not an image" in html
    assert b'type="file" id="image"' in html and b'value="direct" checked' in html
    assert b'name="catalog" value="fashion-mnist" checked' in html  # the form comes back as it was filled in


def test_empty_upload_and_no_file_reshow_the_form(client):
    assert b"The file is empty" in post_form(client, b"", "empty.png").data
    response = client.post("/search", data={"mode": "routed"})
    assert response.status_code == 400 and b"No image was uploaded" in response.data


def test_unsupported_type_on_the_form_is_415(client):
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")
    response = post_form(client, bmp.getvalue(), "x.bmp")
    assert response.status_code == 415 and b"not supported" in response.data


def test_oversized_upload_on_the_form_is_a_friendly_413(client, monkeypatch, query_png):
    monkeypatch.setitem(client.application.config, "MAX_CONTENT_LENGTH", 4096)
    response = post_form(client, query_png + b"\0" * 8192)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert b"larger than the" in response.data and b'type="file" id="image"' in response.data


@pytest.mark.parametrize("path, status", [
    ("/item/fashion-mnist/999999", 404), ("/item/fashion-mnist/3?mode=fastest", 400), ("/item/nope/3", 400),
    ("/item/3", 404), ("/no-such-page", 404), ("/search", 405),
])
def test_error_pages(client, path, status):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "text/html"
    assert b'role="alert"' in response.data and b"Back to search" in response.data
