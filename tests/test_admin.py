"""The admin API: a catalog owner adds and removes items while the app serves; off without a token."""
from __future__ import annotations

import io
import logging
import shutil

import numpy as np
import pytest

from app import create_app

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture()
def admin_app(settings, tmp_path):
    """The app over a private copy of the small stores (these tests change them), admin API on."""
    stores = tmp_path / "stores"
    for name in ("photos", "fashion-mnist"):
        shutil.copytree(settings.store_dir / name, stores / name)
    return create_app(settings.with_(store_dir=stores, admin_token=TOKEN, reload_seconds=3600), {"TESTING": True})


def auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def post_photos(client, photos: list[bytes], category: str | None = None, headers: dict | None = None):
    data = {"image": [(io.BytesIO(p), f"p{i}.jpg") for i, p in enumerate(photos)]}
    if category:
        data["category"] = category
    return client.post("/api/catalogs/photos/items", data=data, content_type="multipart/form-data",
                       headers=auth() if headers is None else headers)


def test_admin_routes_do_not_exist_without_a_token(client, query_photo):
    assert post_photos(client, [query_photo]).status_code == 404
    assert client.delete("/api/catalogs/photos/items/1", headers=auth()).status_code == 404
    assert b"/api/catalogs" not in client.get("/").data  # never linked from the pages


def test_a_missing_or_wrong_token_is_refused_in_the_api_shape(admin_app, query_photo, caplog):
    client = admin_app.test_client()
    missing = post_photos(client, [query_photo], headers={})
    assert missing.status_code == 401 and "admin token" in missing.get_json()["error"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    with caplog.at_level(logging.WARNING):
        wrong = client.delete("/api/catalogs/photos/items/1", headers=auth("x" * len(TOKEN)))
    assert wrong.status_code == 403 and wrong.get_json() == {"error": "the admin token is not right"}
    assert "refused a wrong token" in caplog.text
    assert admin_app.extensions["fashion16"].catalogs["photos"].version == 1  # nothing changed


def test_an_added_photo_is_found_first_and_a_removed_one_is_gone(admin_app, test_photos, caplog):
    client = admin_app.test_client()
    hats = [test_photos.read(int(i)) for i in np.flatnonzero(test_photos.labels == 1)[:2]]
    with caplog.at_level(logging.INFO):
        response = post_photos(client, hats, category="hats")
    body = response.get_json()
    assert response.status_code == 201 and body["catalog_version"] == 2
    assert [i["id"] for i in body["items"]] == [400, 401] and {i["category"] for i in body["items"]} == {"Hat"}
    assert "admin: catalog photos version 2: added [400, 401]" in caplog.text
    image = client.get(body["items"][0]["image_url"])
    assert image.status_code == 200 and image.data == hats[0] and image.cache_control.immutable
    found = client.post("/api/search", data={"image": (io.BytesIO(hats[0]), "hat.jpg")},
                        content_type="multipart/form-data").get_json()
    assert found["catalog_version"] == 2 and found["results"][0]["id"] == 400
    assert found["results"][0]["similarity"] >= 0.99
    again = post_photos(client, hats[:1]).get_json()  # the same photo twice: one item
    assert again["catalog_version"] == 2 and again["items"][0] == {**body["items"][0], "existing": True}
    removed = client.delete("/api/catalogs/photos/items/400", headers=auth())
    assert removed.status_code == 200 and removed.get_json() == {"catalog": "photos", "catalog_version": 3,
                                                                 "removed": 400}
    after = client.post("/api/search", data={"image": (io.BytesIO(hats[0]), "hat.jpg")},
                        content_type="multipart/form-data").get_json()
    assert after["catalog_version"] == 3 and 400 not in [r["id"] for r in after["results"]]
    assert client.delete("/api/catalogs/photos/items/400", headers=auth()).status_code == 404


@pytest.mark.parametrize("case, status, says", [
    ("no-photo", 400, "no photo was uploaded"),
    ("bad-category", 400, "is not a category of this catalog"),
    ("not-an-image", 400, "not an image"),
    ("image-catalog", 400, "keeps its own images"),
])
def test_bad_admin_requests_are_4xx_and_change_nothing(admin_app, query_photo, case, status, says):
    client = admin_app.test_client()
    if case == "no-photo":
        response = client.post("/api/catalogs/photos/items", data={}, headers=auth())
    elif case == "bad-category":
        response = post_photos(client, [query_photo], category="Handbags")
    elif case == "not-an-image":
        response = post_photos(client, [query_photo, b"%PDF-1.4 not a picture"])
    else:
        response = client.post("/api/catalogs/fashion-mnist/items", headers=auth(),
                               data={"image": (io.BytesIO(query_photo), "x.jpg")}, content_type="multipart/form-data")
    assert response.status_code == status and says in response.get_json()["error"]
    assert admin_app.extensions["fashion16"].catalogs["photos"].version == 1
