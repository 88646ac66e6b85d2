"""The JSON API and gallery images through Flask's test client, on the real small index.

Every client mistake must come back as JSON {"error": ...} with its 4xx status; TESTING
is on, so an unhandled exception would fail the test instead of hiding behind a 500.
"""
from __future__ import annotations

import io
import re
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.model import file_sha256
from app.search import MAX_K
from app.web.imaging import png_bytes


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


def test_search_returns_ranked_results_in_the_documented_shape(client, query_png):
    body = upload(client, query_png).get_json()
    assert set(body["category"]) == {"name", "probability"} and 0 <= body["category"]["probability"] <= 1
    assert body["top_categories"][0] == body["category"] and len(body["top_categories"]) == 3
    assert len(body["results"]) == 20
    sims = [r["similarity"] for r in body["results"]]
    assert sims == sorted(sims, reverse=True) and all(0 <= s <= 1 for s in sims)
    for r in body["results"]:
        assert {"id", "category", "similarity", "image_url"} <= set(r)
        assert r["image_url"] == f"/images/{r['id']}"
    assert body["timings_ms"]["total"] >= body["timings_ms"]["forward"] > 0
    assert "decode" in body["timings_ms"]


@pytest.mark.parametrize("mode", ["routed", "direct", "soft"])
def test_k_and_mode(client, query_png, mode):
    body = upload(client, query_png, k="7", mode=mode).get_json()
    assert body["mode"] == mode and len(body["results"]) == 7
    if mode == "direct":
        assert len(body["searched_categories"]) == 10


def test_k_and_mode_from_the_query_string(client, query_png):
    response = client.post(f"/api/search?k={MAX_K}&mode=direct", data={"image": (io.BytesIO(query_png), "q.png")})
    assert response.status_code == 200 and len(response.get_json()["results"]) == MAX_K


@pytest.mark.parametrize("k", ["0", str(MAX_K + 1), "-3", "abc", "2.5"])
def test_bad_k_is_400(client, query_png, k):
    assert "k must be" in error_of(upload(client, query_png, k=k), 400)


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


def test_one_pixel_image_is_searched(client):
    response = upload(client, png_bytes(np.full((1, 1), 200, np.uint8)))
    assert response.status_code == 200 and len(response.get_json()["results"]) == 20


def test_pixel_bomb_is_413_without_decoding(client):
    bomb = png_header_bomb()
    assert len(bomb) < 100
    start = time.perf_counter()
    message = error_of(upload(client, bomb, "bomb.png"), 413)
    assert "pixels" in message
    assert time.perf_counter() - start < 2.0  # decoding 400 megapixels would take far longer


def test_pixel_limit_comes_from_config(client, monkeypatch):
    monkeypatch.setitem(client.application.config, "MAX_PIXELS", 30 * 30)
    assert "the limit is" in error_of(upload(client, encoded("PNG", (31, 31))), 413)
    assert upload(client, encoded("PNG", (30, 30))).status_code == 200


def test_body_over_the_upload_limit_is_413_json(client, monkeypatch, query_png):
    monkeypatch.setitem(client.application.config, "MAX_CONTENT_LENGTH", 2048)
    assert "larger than" in error_of(upload(client, query_png + b"\0" * 4096), 413)


def test_get_on_search_is_405_json(client):
    response = client.get("/api/search")
    assert "POST" in error_of(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unknown_api_route_is_404_json(client):
    error_of(client.get("/api/nothing-here"), 404)
    assert client.post("/api/health").status_code == 405


def test_health(client, model_path, small_index_path):
    body = client.get("/api/health").get_json()
    assert body["status"] == "ok"
    assert body["model"]["sha256"] == file_sha256(model_path)
    assert body["index"]["items"] == 3000 and body["index"]["bits"] == 256
    assert body["modes"] == ["routed", "direct", "soft"] and body["max_k"] == MAX_K
    assert str(small_index_path) not in str(body)  # no server paths


def test_gallery_image_is_the_stored_png_with_cache_headers(client, fmnist):
    response = client.get("/images/7")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.data))), fmnist.x_train[7])
    assert response.cache_control.public and response.cache_control.max_age > 0
    etag = response.headers["ETag"]
    again = client.get("/images/7", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data


@pytest.mark.parametrize("path", [
    "/images/../../etc/passwd", "/images/%2e%2e%2fetc%2fpasswd", "/images/..%2f..%2fetc%2fpasswd",
    "/images/3000", "/images/-1", "/images/abc", "/images/",
])
def test_bad_image_paths_are_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert b"root:" not in response.data


def test_openapi_file_documents_every_api_route(web_app):
    """docs/openapi.yaml keeps up with the routes (a text check: PyYAML is not a dependency)."""
    spec = (Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml").read_text()
    documented = set(re.findall(r"^  (/\S+):$", spec, flags=re.M))
    served = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in web_app.url_map.iter_rules()
              if rule.rule.startswith(("/api/", "/images/"))}
    assert served == documented
