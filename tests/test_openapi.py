"""The API's OpenAPI document against the real thing: every route's real answers validated against it.

One source of truth (app/web/openapi.py), served at /api/openapi.json and rendered at
/api/docs; docs/openapi.json is that document written out, kept identical here.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from app import create_app
from app.settings import ROOT
from app.web.openapi import document
from openapi_check import errors, response_schema

DOC_FILE = ROOT / "docs" / "openapi.json"
TOKEN = "openapi-admin-token-0123456789"


def bmp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "BMP")
    return out.getvalue()


@pytest.fixture(scope="module")
def app_with_admin(settings, tmp_path_factory):
    """The app over a private copy of the small stores with the admin API on (its routes are documented too)."""
    stores = tmp_path_factory.mktemp("openapi-stores")
    for name in ("photos", "fashion-mnist"):
        shutil.copytree(settings.store_dir / name, stores / name)
    return create_app(settings.with_(store_dir=stores, admin_token=TOKEN, reload_seconds=3600), {"TESTING": True})


@pytest.fixture(scope="module")
def saved_id(app_with_admin, query_photo) -> str:
    body = app_with_admin.test_client().post("/api/search", data={"image": (io.BytesIO(query_photo), "q.jpg"),
                                                                 "save": "1"}).get_json()
    return body["query_id"]


def upload(data: bytes, **fields) -> dict:
    return {"data": {"image": (io.BytesIO(data), "q.jpg"), **fields}, "content_type": "multipart/form-data"}


AUTH = {"headers": {"Authorization": f"Bearer {TOKEN}"}}

# (method, documented path, real path, request, expected status); "{saved}" is a saved query's id.
CASES = [
    ("post", "/api/search", "/api/search", lambda q: upload(q["photo"]), 200),
    ("post", "/api/search", "/api/search", lambda q: upload(q["png"], catalog="fashion-mnist", k="5"), 200),
    ("post", "/api/search", "/api/search", lambda q: upload(q["photo"], box="0.1,0.1,0.6,0.8", category="Hat"), 200),
    ("post", "/api/search", "/api/search", lambda q: upload(q["photo"], box="0,0,2,1"), 400),
    ("post", "/api/search", "/api/search", lambda q: upload(q["photo"], catalog="nope"), 400),
    ("post", "/api/search", "/api/search", lambda q: upload(bmp()), 415),
    ("post", "/api/search", "/api/search", lambda q: upload(b"\0" * 4096, fill="x" * 2000), 413),
    ("get", "/api/search", "/api/search", lambda q: {}, 405),
    ("get", "/api/queries/{query_id}", "/api/queries/{saved}", lambda q: {}, 200),
    ("get", "/api/queries/{query_id}", "/api/queries/{saved}?category=Pants&k=3&mode=direct", lambda q: {}, 200),
    ("get", "/api/queries/{query_id}", "/api/queries/{saved}?category=Socks", lambda q: {}, 400),
    ("get", "/api/queries/{query_id}", "/api/queries/AAAAAAAAAAAAAAAA", lambda q: {}, 404),
    ("post", "/api/queries/{query_id}", "/api/queries/{saved}", lambda q: {}, 405),
    ("get", "/api/health", "/api/health", lambda q: {}, 200),
    ("post", "/api/health", "/api/health", lambda q: {}, 405),
    ("get", "/api/openapi.json", "/api/openapi.json", lambda q: {}, 200),
    ("post", "/api/catalogs/{name}/items", "/api/catalogs/photos/items", lambda q: {**upload(q["photo"]), **AUTH}, 201),
    ("post", "/api/catalogs/{name}/items", "/api/catalogs/photos/items", lambda q: upload(q["photo"]), 401),
    ("post", "/api/catalogs/{name}/items", "/api/catalogs/photos/items",
     lambda q: {"data": {"category": "Hat"}, **AUTH}, 400),
    ("delete", "/api/catalogs/{name}/items/{item_id}", "/api/catalogs/photos/items/3", lambda q: AUTH, 200),
    ("delete", "/api/catalogs/{name}/items/{item_id}", "/api/catalogs/photos/items/3",
     lambda q: {"headers": {"Authorization": "Bearer " + "x" * len(TOKEN)}}, 403),
    ("delete", "/api/catalogs/{name}/items/{item_id}", "/api/catalogs/photos/items/999999", lambda q: AUTH, 404),
]


@pytest.mark.parametrize("method, documented, path, make, status", CASES,
                         ids=[f"{c[0]} {c[2]} {c[4]}" for c in CASES])
def test_real_answers_match_the_document(app_with_admin, saved_id, monkeypatch, query_photo, query_png,
                                          method, documented, path, make, status):
    client = app_with_admin.test_client()
    if status == 413:
        monkeypatch.setitem(app_with_admin.config, "MAX_CONTENT_LENGTH", 2048)
    response = getattr(client, method)(path.replace("{saved}", saved_id), **make({"photo": query_photo,
                                                                                 "png": query_png}))
    assert response.status_code == status, response.get_data(as_text=True)
    doc = document()
    operation = method if method in doc["paths"][documented] else next(iter(doc["paths"][documented]))  # 405
    found = errors(response.get_json(), response_schema(doc, documented, operation, status), doc)
    assert not found, found


def test_every_documented_route_and_every_served_route_is_checked(web_app):
    """The document names exactly the routes the app serves under /api/ and /images/, and every JSON route
    among them has real answers checked above."""
    doc = document()
    served = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in web_app.url_map.iter_rules()
              if rule.rule.startswith(("/api/", "/images/"))}
    assert served == set(doc["paths"])
    checked = {(m, p) for m, p, *_ in CASES}
    json_routes = {(m, p) for p, ops in doc["paths"].items() for m, op in ops.items()
                   if "application/json" in next(iter(op["responses"].values())).get("content", {})}
    assert json_routes <= checked, json_routes - checked


def test_an_expired_query_is_410_as_documented(app_with_admin, query_photo):
    from app.saved_searches import SavedSearch

    saved = app_with_admin.extensions["fashion16"].saved
    old = saved.get(app_with_admin.test_client().post(
        "/api/search", data={"image": (io.BytesIO(query_photo), "q.jpg"), "save": "1"}).get_json()["query_id"])
    expired = saved.save(SavedSearch(old.catalog, old.model_sha256, old.probabilities, old.embedding, old.thumbnail,
                                     old.thumbnail_type), now=old.created - 2 * saved.ttl)
    response = app_with_admin.test_client().get(f"/api/queries/{expired}")
    assert response.status_code == 410 and "expired" in response.get_json()["error"]
    doc = document()
    assert not errors(response.get_json(), response_schema(doc, "/api/queries/{query_id}", "get", 410), doc)


def test_the_document_is_served_and_rendered(client):
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.get_json() == json.loads(json.dumps(document()))
    page = client.get("/api/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    for path, ops in document()["paths"].items():
        for method in ops:
            assert f"<code>{method.upper()} {path}</code>" in html
    assert "<script" not in html.split("</head>")[1] and "http://localhost/api/search" in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_docs_openapi_json_is_the_served_document():
    """docs/openapi.json is for readers of the repository; UPDATE_DOCS=1 rewrites it from app/web/openapi.py."""
    text = json.dumps(document(), indent=2) + "\n"
    if os.environ.get("UPDATE_DOCS") == "1":
        DOC_FILE.write_text(text)
    assert DOC_FILE.read_text() == text, "docs/openapi.json is stale: run UPDATE_DOCS=1 pytest tests/test_openapi.py"


def test_limits_in_the_document_follow_the_code():
    from app.search import MAX_K, MODES

    doc = document()
    k = doc["paths"]["/api/search"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["k"]
    assert k["maximum"] == MAX_K and doc["components"]["schemas"]["SearchResult"]["properties"]["mode"]["enum"] == \
        list(MODES)
    assert not errors({"results": [1]}, doc["components"]["schemas"]["SearchResult"], doc) == []  # the checker checks
    assert errors(np.float64(0.5).item(), {"type": "integer"}, doc)
