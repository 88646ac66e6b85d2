"""The JSON API and catalog images through Flask's test client, on the real small stores of both catalogs.

Every client mistake must come back as JSON {"error": ...} with its 4xx status; TESTING
is on, so an unhandled exception would fail the test instead of hiding behind a 500.
"""
from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.files import file_sha256
from app.imaging.display import png_bytes
from app.search import MAX_K
from app.settings import ROOT

FASHION = {"catalog": "fashion-mnist"}


def encoded(fmt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def png_header_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose IHDR claims width x height (400 MB decoded): refused from the header alone."""
    data = bytearray(png_bytes(np.zeros((1, 1), np.uint8)))
    struct.pack_into(">II", data, 16, width, height)        # IHDR data follows signature, length, type
    struct.pack_into(">I", data, 29, zlib.crc32(data[12:29]))  # CRC over chunk type + data
    return bytes(data)


def upload(client, data: bytes, filename: str = "query.png", **fields):
    return client.post("/api/search", data={"image": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data")


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def check_ranked(body: dict, catalog: str, k: int = 20) -> None:
    assert body["catalog"] == catalog
    assert set(body["category"]) == {"name", "probability"} and 0 <= body["category"]["probability"] <= 1
    assert body["top_categories"][0] == body["category"] and len(body["top_categories"]) == 3
    assert len(body["results"]) == k
    sims = [r["similarity"] for r in body["results"]]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    for r in body["results"]:
        assert {"id", "category", "similarity", "image_url"} <= set(r)
        assert re.fullmatch(f"http://localhost/images/{catalog}/{r['id']}\\?v=[0-9a-f]{{16}}", r["image_url"])
    assert body["timings_ms"]["total"] >= body["timings_ms"]["forward"] > 0
    assert list(body["timings_ms"]) == ["decode", "preprocess", "forward", "hash", "scan", "rerank", "total"]


def test_a_photo_searches_the_photo_catalog_by_default(client, query_photo):
    body = upload(client, query_photo, "shoes.jpg").get_json()
    check_ranked(body, "photos")
    assert body["category"]["name"] == "Shoes"
    assert all(r["path"].startswith("train/") for r in body["results"])  # catalog photos are files


def test_a_phone_size_upload_stays_in_memory_and_is_searched(web_app, client, query_photo):
    """Werkzeug spools a file part over 500 kB to a temporary file; uploads are never written to disk."""
    from flask import request

    out = io.BytesIO()
    Image.open(io.BytesIO(query_photo)).resize((2400, 3200)).save(out, "JPEG", quality=95)
    big = out.getvalue()
    assert len(big) > 500 * 1024
    with web_app.test_request_context("/api/search", method="POST", data={"image": (io.BytesIO(big), "big.jpg")}):
        stream = request.files["image"].stream
        assert isinstance(stream, io.BytesIO) and stream.getvalue() == big
    assert upload(client, big, "big.jpg").get_json()["category"]["name"] == "Shoes"


def test_search_names_its_catalog(client, query_png):
    body = upload(client, query_png, **FASHION).get_json()
    check_ranked(body, "fashion-mnist")
    assert "path" not in body["results"][0]


def test_unknown_catalog_is_400_naming_the_catalogs(client, query_png):
    message = error_of(upload(client, query_png, catalog="shoes-2019"), 400)
    assert "there is no catalog 'shoes-2019'" in message and "photos, fashion-mnist" in message


@pytest.mark.parametrize("mode", ["routed", "direct", "soft"])
def test_k_and_mode(client, query_png, mode):
    body = upload(client, query_png, k="7", mode=mode, **FASHION).get_json()
    assert body["mode"] == mode and len(body["results"]) == 7
    if mode == "direct":
        assert len(body["searched_categories"]) == 10


def test_k_mode_and_catalog_from_the_query_string(client, query_png):
    response = client.post(f"/api/search?k={MAX_K}&mode=direct&catalog=fashion-mnist",
                           data={"image": (io.BytesIO(query_png), "q.png")})
    assert response.status_code == 200 and len(response.get_json()["results"]) == MAX_K


def test_a_field_given_twice_differently_is_400_not_silently_one(client, query_png):
    response = client.post("/api/search?mode=direct", data={"image": (io.BytesIO(query_png), "q.png"),
                                                            "mode": "routed", **FASHION})
    assert "mode is given more than once with different values (direct, routed)" in error_of(response, 400)
    same = client.post("/api/search?mode=direct", data={"image": (io.BytesIO(query_png), "q.png"), "mode": "direct",
                                                        **FASHION})
    assert same.status_code == 200 and same.get_json()["mode"] == "direct"


def test_two_files_is_400(client, query_png):
    response = client.post("/api/search", data={"image": [(io.BytesIO(query_png), "a.png"),
                                                          (io.BytesIO(query_png), "b.png")]})
    assert "upload one image at a time" in error_of(response, 400)


@pytest.mark.parametrize("k", ["0", str(MAX_K + 1), "-3", "abc", "2.5", "１０", "1_0", "+5", "0x10", "1e1", " 7 7"])
def test_bad_k_is_400(client, query_png, k):
    assert "k must be a whole number from 1 to" in error_of(upload(client, query_png, k=k), 400)


def test_bad_mode_is_400(client, query_png):
    assert "mode must be one of routed, direct, soft" in error_of(upload(client, query_png, mode="fast"), 400)


def test_missing_image_field_is_400(client):
    assert "no image was uploaded" in error_of(client.post("/api/search", data={"k": "5"}), 400)
    assert "no image was uploaded" in error_of(client.post("/api/search", json={"image": "x"}), 400)


def test_zero_byte_file_is_400(client):
    assert "empty" in error_of(upload(client, b"", "empty.png"), 400)


def test_text_file_renamed_jpg_is_400(client):
    assert "not an image" in error_of(upload(client, b"just some text, honestly\n" * 20, "photo.jpg"), 400)


def test_truncated_jpeg_is_400(client):
    jpeg = encoded("JPEG", (256, 256))
    assert "damaged or truncated" in error_of(upload(client, jpeg[: len(jpeg) // 2], "cut.jpg"), 400)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_unsupported_image_type_is_415(client, fmt):
    assert "not supported" in error_of(upload(client, encoded(fmt), f"x.{fmt.lower()}"), 415)


@pytest.mark.parametrize("catalog", ["photos", "fashion-mnist"])
def test_one_pixel_image_is_searched(client, catalog):
    response = upload(client, png_bytes(np.full((1, 1), 200, np.uint8)), catalog=catalog)
    assert response.status_code == 200 and len(response.get_json()["results"]) == 20


@pytest.mark.parametrize("side, says", [(9000, "9000x9000 pixels; the limit is 10 megapixels"),
                                        (20000, "far too many pixels")])
def test_pixel_bomb_is_413_without_decoding(client, side, says):
    bomb = png_header_bomb(side, side)
    assert len(bomb) < 100
    assert says in error_of(upload(client, bomb, "bomb.png"), 413)  # from the header: there are no pixels


def test_pixel_limit_comes_from_config(client, monkeypatch):
    monkeypatch.setitem(client.application.config, "MAX_PIXELS", 4 * 30 * 30)  # PNG: a quarter of it
    assert "the limit is" in error_of(upload(client, encoded("PNG", (31, 31))), 413)
    assert upload(client, encoded("PNG", (30, 30))).status_code == 200
    assert upload(client, encoded("JPEG", (60, 60))).status_code == 200


def test_body_over_the_upload_limit_is_413_json(client, monkeypatch, query_png):
    monkeypatch.setitem(client.application.config, "MAX_CONTENT_LENGTH", 2048)
    assert "larger than the 0.00195 MB limit" in error_of(upload(client, query_png + b"\0" * 4096), 413)


def test_too_many_form_fields_is_413_saying_so(client, query_png):
    fields = {f"f{i}": "x" for i in range(1500)}
    message = error_of(upload(client, query_png, **fields), 413)
    assert "too many fields" in message and "MB" not in message


def test_get_on_search_is_405_json(client):
    response = client.get("/api/search")
    assert "POST" in error_of(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unknown_api_route_is_404_json(client):
    error_of(client.get("/api/nothing-here"), 404)
    assert client.post("/api/health").status_code == 405


def test_health_lists_the_catalogs_with_their_models(client, catalogs, store_dir):
    body = client.get("/api/health").get_json()
    assert body["status"] == "ok" and body["default_catalog"] == "photos"
    assert [c["name"] for c in body["catalogs"]] == ["photos", "fashion-mnist"]
    for entry in body["catalogs"]:
        catalog = catalogs[entry["name"]]
        assert entry["items"] == len(catalog) == sum(c["items"] for c in entry["categories"])
        assert [c["name"] for c in entry["categories"]] == list(catalog.class_names)
        assert entry["model"]["sha256"] == file_sha256(ROOT / "models" / entry["model"]["file"])
        assert entry["model"]["runtime"] == "litert" and entry["bits"] == 256
    photos, fashion = body["catalogs"]
    assert photos["items"] == 400 and photos["model"]["file"] == "photos.tflite"
    assert photos["model"]["input"] == [192, 192, 3]
    assert fashion["items"] == 2000 and fashion["model"]["file"] == "fashion16.tflite"
    assert body["modes"] == ["routed", "direct", "soft"] and body["max_k"] == MAX_K
    assert str(store_dir) not in str(body) and str(ROOT) not in str(body)  # no server paths


def test_store_held_image_is_the_stored_png_with_cache_headers(client, fmnist, catalogs):
    response = client.get("/images/fashion-mnist/7")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.data))), fmnist.x_train[7])
    assert response.cache_control.no_cache and not response.cache_control.immutable  # unversioned: revalidate
    etag = response.headers["ETag"]
    again = client.get("/images/fashion-mnist/7", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data
    versioned = client.get(f"/images/fashion-mnist/7?v={catalogs['fashion-mnist'].item(7).hashes[0]}")
    assert versioned.cache_control.immutable and versioned.cache_control.max_age >= 86400 * 365
    assert versioned.data == response.data
    assert client.get("/images/fashion-mnist/7?v=0123456789abcdef").status_code == 404  # another picture's URL


def test_photo_catalog_image_is_the_photo_file(client, catalogs):
    catalog = catalogs["photos"]
    item = int(catalog.snapshot.ids()[5])
    response = client.get(f"/images/photos/{item}?v={catalog.item(item).hashes[0]}")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == catalog.item_file(item).read_bytes()
    assert response.cache_control.public and response.cache_control.immutable
    again = client.get(f"/images/photos/{item}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", [
    "/images/fashion-mnist/2000", "/images/fashion-mnist/-1", "/images/photos/99999", "/images/nope/1",
    "/images/fashion-mnist/abc", "/images/", "/images/7",
])
def test_unknown_images_are_404(client, path):
    assert client.get(path).status_code == 404


# --- saved queries, categories, crop boxes, default modes ------------------------------------------

def test_a_search_is_saved_and_searched_again_by_its_id(client, query_photo, catalogs):
    assert "query_id" not in upload(client, query_photo, "shoes.jpg", k="5").get_json()  # kept only when asked
    body = upload(client, query_photo, "shoes.jpg", k="5", save="1").get_json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", body["query_id"])
    assert body["results_url"] == f"http://localhost/results/{body['query_id']}"
    again = client.get(f"/api/queries/{body['query_id']}?k=5").get_json()
    assert [r["id"] for r in again["results"]] == [r["id"] for r in body["results"]]  # the same query, again
    assert again["category"] == body["category"] and again["query_id"] == body["query_id"]
    assert "decode" not in again["timings_ms"] and "forward" not in again["timings_ms"]  # no picture, no model
    hats = client.get(f"/api/queries/{body['query_id']}?category=Hat&k=7").get_json()
    assert hats["category_filter"] == "Hat" and hats["searched_categories"] == ["Hat"] and len(hats["results"]) == 7
    assert {r["category"] for r in hats["results"]} == {"Hat"}
    assert hats["results_url"].endswith(f"/results/{body['query_id']}?category=Hat")
    every = client.get(f"/api/queries/{body['query_id']}?mode=direct").get_json()
    assert every["mode"] == "direct" and len(every["searched_categories"]) == len(catalogs["photos"].stocked())


@pytest.mark.parametrize("query, says", [
    ("category=Socks", "category must be one the photos catalog has items in"),
    ("category=Shoes&category=Hat", "category is given more than once"),
    ("mode=fast", "mode must be one of"), ("k=0", "k must be a whole number"),
])
def test_a_bad_field_on_a_saved_query_is_400(client, query_photo, query, says):
    query_id = upload(client, query_photo, save="true").get_json()["query_id"]
    assert says in error_of(client.get(f"/api/queries/{query_id}?{query}"), 400)


@pytest.mark.parametrize("query_id", ["AAAAAAAAAAAAAAAA", "short", "x" * 200, "A.B%20CDEFGHIJKLMN"])
def test_an_unknown_query_is_404(client, query_id):
    assert "search with your photo again" in error_of(client.get(f"/api/queries/{query_id}"), 404)


def test_category_on_upload_searches_only_that_category(client, query_photo):
    body = upload(client, query_photo, category="Pants", k="10").get_json()
    assert body["category"]["name"] == "Shoes"  # the model still says what it sees
    assert body["category_filter"] == "Pants" and {r["category"] for r in body["results"]} == {"Pants"}
    assert "one the fashion-mnist catalog has items in" in error_of(
        upload(client, query_photo, catalog="fashion-mnist", category="Pants"), 400)


def side_by_side(left: bytes, right: bytes) -> bytes:
    """Two photos in one picture, each on its half: a crop box picks one."""
    a, b = (Image.open(io.BytesIO(x)).convert("RGB").resize((300, 400)) for x in (left, right))
    both = Image.new("RGB", (600, 400))
    both.paste(a, (0, 0))
    both.paste(b, (300, 0))
    out = io.BytesIO()
    both.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_a_crop_box_searches_one_garment_of_the_picture(client, test_photos):
    shoes = test_photos.read(int(np.flatnonzero(test_photos.labels == 6)[0]))
    pants = test_photos.read(int(np.flatnonzero(test_photos.labels == 4)[0]))
    both = side_by_side(shoes, pants)
    left = upload(client, both, box="0,0,0.5,1", save="1").get_json()
    right = upload(client, both, box="0.5,0,0.5,1").get_json()
    assert left["category"]["name"] == "Shoes" and right["category"]["name"] == "Pants"
    assert left["box"] == "0,0,0.5,1" and right["box"] == "0.5,0,0.5,1"
    assert client.get(f"/api/queries/{left['query_id']}").get_json()["box"] == "0,0,0.5,1"
    whole = upload(client, both, box="0,0,1,1").get_json()
    assert whole["box"] is None  # the whole picture is no crop


@pytest.mark.parametrize("box, says", [
    ("0.1,0.1,0.5", "box must be four fractions"), ("a,b,c,d", "box must be four fractions"),
    ("-0.1,0,0.5,0.5", "box must be four fractions"), ("0,0,1.5,0.5", "box must lie inside the picture"),
    ("0.6,0,0.5,0.5", "box must lie inside the picture"), ("0,0,0.01,0.5", "box is too small"),
    ("0,0,0,0", "box is too small"), ("1e-1,0,0.5,0.5", "box must be four fractions"),
])
def test_a_bad_box_is_400(client, query_photo, box, says):
    assert says in error_of(upload(client, query_photo, box=box), 400)


def test_the_default_mode_is_the_model_cards(client, query_photo, query_png):
    """Photos: soft, which beat routed on the validation photos (its card); Fashion-MNIST's card records no such
    comparison, so the paper's routed stays."""
    assert upload(client, query_photo).get_json()["mode"] == "soft"
    assert upload(client, query_png, **FASHION).get_json()["mode"] == "routed"
    health = {c["name"]: c for c in client.get("/api/health").get_json()["catalogs"]}
    assert health["photos"]["default_mode"] == "soft" and health["fashion-mnist"]["default_mode"] == "routed"
    assert health["fashion-mnist"]["demo"] and not health["photos"]["demo"]


def test_with_results_addresses_off_nothing_is_saved(settings, query_photo):
    from app import create_app

    app = create_app(settings.with_(results=False), {"TESTING": True})
    client = app.test_client()
    body = upload(client, query_photo).get_json()
    assert "query_id" not in body and "results_url" not in body and len(body["results"]) == 20
    assert "turned off" in error_of(client.get("/api/queries/AAAAAAAAAAAAAAAA"), 404)
