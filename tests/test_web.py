"""The app factory, its configuration and startup checks, and the HTML pages."""
from __future__ import annotations

import base64
import io
import logging
import re

import pytest
from PIL import Image

from app import create_app
from app.index_store import read_index, write_index
from app.web.service import StartupError
from app.web.settings import from_env

TILE = re.compile(rb'<li class="tile">')
EXTERNAL = re.compile(rb'(?:src|href|action)="(?:https?:)?//')


def post_form(client, data: bytes, filename: str = "garment.png", mode: str = "routed"):
    return client.post("/search", data={"image": (io.BytesIO(data), filename), "mode": mode},
                       content_type="multipart/form-data")


# --- configuration and startup -------------------------------------------------------------

def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION16_MODEL", str(tmp_path / "m.keras"))
    monkeypatch.setenv("FASHION16_INDEX", str(tmp_path / "i.h5"))
    monkeypatch.setenv("FASHION16_MAX_UPLOAD_MB", "2.5")
    monkeypatch.setenv("FASHION16_MAX_PIXELS", "1000000")
    monkeypatch.setenv("FASHION16_IMAGE_MAX_AGE", "60")
    settings = from_env()
    assert settings["MODEL_PATH"] == str(tmp_path / "m.keras") and settings["INDEX_PATH"] == str(tmp_path / "i.h5")
    assert settings["MAX_CONTENT_LENGTH"] == int(2.5 * 2**20)
    assert settings["MAX_PIXELS"] == 1_000_000 and settings["IMAGE_MAX_AGE"] == 60


@pytest.mark.parametrize("value", ["lots", "-1", "0"])
def test_a_bad_setting_names_its_variable(monkeypatch, value):
    monkeypatch.setenv("FASHION16_MAX_UPLOAD_MB", value)
    with pytest.raises(ValueError, match="FASHION16_MAX_UPLOAD_MB"):
        from_env()


def refused(caplog, **config) -> str:
    """Create the app expecting a refusal; return the logged reason."""
    with caplog.at_level(logging.ERROR), pytest.raises(StartupError):
        create_app({"TESTING": True, **{k.upper(): str(v) for k, v in config.items()}})
    return " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_missing_model_refuses_to_start(caplog, tmp_path, small_index_path):
    message = refused(caplog, model_path=tmp_path / "none.keras", index_path=small_index_path)
    assert "model file not found" in message and "python -m app train" in message


def test_missing_index_refuses_to_start(caplog, tmp_path, model_path):
    message = refused(caplog, model_path=model_path, index_path=tmp_path / "none.h5")
    assert "index not found" in message and "python -m app index build" in message


def test_index_of_another_model_refuses_to_start(caplog, tmp_path, model_path, small_index_path):
    index = read_index(small_index_path)
    index.model_sha256 = "0" * 64
    other = write_index(index, tmp_path / "other-model.h5")
    message = refused(caplog, model_path=model_path, index_path=other)
    assert "was built with model 000000000000" in message and "python -m app index build" in message


def test_searcher_is_created_once_per_app(web_app, client, query_png):
    searcher = web_app.extensions["fashion16"].searcher
    post_form(client, query_png)
    client.get("/item/3")
    assert web_app.extensions["fashion16"].searcher is searcher


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
    assert len(re.findall(rb'href="/item/\d+\?mode=soft"', html)) == 20
    assert len(re.findall(rb'<img src="/images/\d+" alt="[^"]+, catalog item \d+"', html)) == 20
    assert b"Answered in" in html  # timings, folded away
    assert not EXTERNAL.search(html)


def test_uploaded_image_is_shown_inline_not_stored(client, query_png):
    html = post_form(client, query_png).data.decode()
    src = re.search(r'class="query-image pixelated" src="data:image/png;base64,([^"]+)"', html).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(src))).size == (28, 28)


def test_large_upload_is_shown_as_a_small_thumbnail(client):
    photo = io.BytesIO()
    Image.new("RGB", (1200, 900), "white").save(photo, format="JPEG")
    html = post_form(client, photo.getvalue(), "photo.jpg").data.decode()
    src = re.search(r'class="query-image" src="data:image/png;base64,([^"]+)"', html).group(1)
    assert max(Image.open(io.BytesIO(base64.b64decode(src))).size) == 256


def test_more_like_this_searches_with_a_catalog_image(client):
    response = client.get("/item/42?mode=direct")
    html = response.data
    assert response.status_code == 200 and len(TILE.findall(html)) == 20
    assert b'src="/images/42" alt="Catalog item 42"' in html and b"(direct mode)" in html
    assert b'href="/item/42?mode=routed"' in html  # the same item in the other modes
    assert client.get("/item/42").status_code == 200  # mode defaults to routed


def test_bad_upload_reshows_the_form_with_a_message(client):
    response = post_form(client, b"%PDF-1.4 not a picture", "photo.jpg", mode="direct")
    html = response.data
    assert response.status_code == 400
    assert b'role="alert"' in html and b"The file is not an image" in html
    assert b'type="file" id="image"' in html and b'value="direct" checked' in html


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
    ("/item/999999", 404), ("/item/3?mode=fastest", 400), ("/no-such-page", 404), ("/search", 405),
])
def test_error_pages(client, path, status):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "text/html"
    assert b'role="alert"' in response.data and b"Back to search" in response.data
