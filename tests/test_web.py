"""The app factory, its configuration and startup checks, and the HTML pages."""
from __future__ import annotations

import base64
import io
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import create_app
from app.settings import ROOT
from app.stores import Hdf5Store
from app.web.service import StartupError
from store_helpers import copy_catalog

TILE = re.compile(rb'<li class="tile">')
EXTERNAL = re.compile(rb'(?:src|href|action)="(?:https?:)?//')


def post_form(client, data: bytes, filename: str = "garment.png", mode: str | None = "routed",
              catalog: str = "fashion-mnist"):
    fields = {"image": (io.BytesIO(data), filename), "catalog": catalog, **({"mode": mode} if mode else {})}
    return client.post("/search", data=fields, content_type="multipart/form-data")


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

TILE_LINK = re.compile(r'<li class="tile">\s*<a href="/item/([a-z-]+)/(\d+)(?:\?from=([A-Za-z0-9_-]{16}))?">')
MATCH = re.compile(r'<span class="score">(\d+)% match</span>')


def words(html: bytes | str) -> str:
    """A page's text with its line breaks and indentation as single spaces (templates wrap their lines)."""
    return " ".join((html.decode() if isinstance(html, bytes) else html).split())


def results_of(client, response) -> tuple[str, str]:
    """Follow an upload's 303 to its results page; returns (address, html)."""
    assert response.status_code == 303, response.get_data(as_text=True)
    address = response.headers["Location"]
    assert re.fullmatch(r"/results/[A-Za-z0-9_-]{16}(\?mode=\w+)?", address)
    page = client.get(address)
    assert page.status_code == 200 and page.mimetype == "text/html"
    return address, page.get_data(as_text=True)


def shown(html: str) -> list[int]:
    return [int(m.group(2)) for m in TILE_LINK.finditer(html)]


def test_home_page_has_an_accessible_upload_form(client, catalogs):
    response = client.get("/")
    html = response.data
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert b'enctype="multipart/form-data"' in html and b'action="/search"' in html
    assert b'<label for="image"' in html and b'type="file" id="image" name="image" accept="image/*" required' in html
    assert b'name="catalog" value="photos"' in html  # the one shop catalog: no picker
    for mode in (b"routed", b"direct", b"soft"):
        assert b'name="mode" value="' + mode + b'"' in html
    assert b'value="soft" checked' in html  # the photo catalog's default, from its model card
    assert b"Best guess, with a second look</strong> <span class=\"badge\">recommended" in html
    assert b"Routed" not in html and b"the paper's method" not in html and b"Classify, then hash" not in html
    assert ("Works for: " + ", ".join(catalogs["photos"].stocked()) + ".").encode() in html
    assert "href=\"/?catalog=fashion-mnist\">the paper's Fashion-MNIST demo</a>" in words(html)
    assert not EXTERNAL.search(html), "everything must be served locally"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self': no inline scripts
    assert b"<script>" not in html and b"style=" not in html


def test_the_paper_demo_is_presented_as_a_demo(client):
    html = words(client.get("/?catalog=fashion-mnist").data)
    assert "This is the research paper's demo, not a shop" in html and "as a grey silhouette" in html
    assert 'name="catalog" value="fashion-mnist"' in html and 'value="routed" checked' in html
    assert 'href="/?catalog=photos">Search the clothing photos instead' in html


def test_catalog_picker_counts_the_categories_a_shop_stocks(tmp_path, settings, catalogs):
    """A shop with items in 4 of the model's 10 categories says "4 categories", and lists those 4."""
    stores = copy_stores(settings.store_dir, tmp_path / "stores")
    photos = catalogs["photos"].snapshot
    keep = [c for c in range(4)]
    ids = np.concatenate([photos.ids(c) for c in keep])
    copy_catalog(Hdf5Store(stores / "photos"), Hdf5Store(stores / "shop"), ids=ids)
    app = create_app(settings.with_(store_dir=stores), {"TESTING": True})
    html = app.test_client().get("/?catalog=shop").get_data(as_text=True)
    names = catalogs["photos"].class_names
    assert "items in 4 categories</option>" in html and 'value="shop" selected' in html
    assert f"Works for: {', '.join(names[c] for c in keep)}." in html
    assert "items in 10 categories</option>" in html  # the photo catalog, beside it


def test_static_files_are_served_locally(client):
    css = client.get("/static/style.css")
    assert css.status_code == 200 and b"image-rendering: pixelated" in css.data and b":focus-visible" in css.data
    for script in ("app.js", "upload.js", "crop.js"):
        assert client.get(f"/static/{script}").status_code == 200
    assert client.get("/static/favicon.svg").status_code == 200


def test_an_upload_redirects_to_results_that_reload_the_same(client, query_photo):
    address, html = results_of(client, post_form(client, query_photo, "shoes.jpg", mode=None, catalog="photos"))
    assert len(TILE.findall(html.encode())) == 20
    assert 'Looks like: <span class="category">Shoes</span>' in html
    matches = [int(m) for m in MATCH.findall(html)]
    assert len(matches) == 20 and matches == sorted(matches, reverse=True) and all(0 <= m <= 100 for m in matches)
    search_id = address.split("/")[2].split("?")[0]
    assert all(c == "photos" and f == search_id for c, _, f in TILE_LINK.findall(html))  # items, and the way back
    assert client.get(address).get_data(as_text=True).count("% match</span>") == 20
    assert shown(client.get(address).get_data(as_text=True)) == shown(html)  # a reload shows the same results
    assert "What does “match” mean?" in html and "<details" in html  # the meaning, one tap away
    assert 'src="data:image/jpeg;base64,' in html  # the kept thumbnail, not the upload
    assert "This page's address works for 24 hours" in html
    assert "Answered in" in html and not EXTERNAL.search(html.encode())


def test_category_chips_search_the_same_photo_again(client, catalogs, query_photo):
    address, html = results_of(client, post_form(client, query_photo, "shoes.jpg", mode=None, catalog="photos"))
    chips = re.findall(r'<a class="chip" href="(/results/[^"]+\?category=([^"&]+))"', html)
    assert len(chips) == len(catalogs["photos"].stocked()) and chips[0][1] == "Shoes"  # likeliest first
    assert '<a class="chip" href="/results/' in html and 'aria-current="true">Shoes' in html
    href, name = chips[1]
    other = client.get(href.replace("&amp;", "&"))
    page = other.get_data(as_text=True)
    assert other.status_code == 200 and f'aria-current="true">{name}' in page
    assert set(re.findall(r'<span class="tile-category">([^<]+)</span>', page)) == {name}
    every = client.get(address.split("?")[0] + "?mode=direct").get_data(as_text=True)
    assert 'aria-current="true">All categories' in every
    assert client.get(address.split("?")[0] + "?category=Socks").status_code == 400


def test_mode_choices_on_results_are_plain_links(client, query_photo):
    address, html = results_of(client, post_form(client, query_photo, "shoes.jpg", mode="routed", catalog="photos"))
    assert address.endswith("?mode=routed")  # not the catalog's default: the address keeps it
    base = address.split("?")[0]
    assert f'href="{base}?mode=direct"' in html and f'href="{base}"' in html  # soft: the default, no parameter
    assert 'aria-current="true">Only the likeliest category</a>' in html


def test_a_reload_after_the_catalog_changed_shows_its_current_version(tmp_path, settings, query_photo):
    """Ids are stable, so a saved search re-runs against the new version: a removed item is gone."""
    stores = copy_stores(settings.store_dir, tmp_path / "stores")
    app = create_app(settings.with_(store_dir=stores, reload_seconds=3600), {"TESTING": True})
    client = app.test_client()
    address, html = results_of(client, post_form(client, query_photo, "shoes.jpg", mode=None, catalog="photos"))
    first = shown(html)[0]
    writer = Hdf5Store(stores / "photos").writer()
    writer.remove([first])
    writer.commit()
    app.extensions["fashion16"].refresh()
    again = shown(client.get(address).get_data(as_text=True))
    assert first not in again and again[:5] == shown(html)[1:6]


def test_expired_unknown_and_outdated_results_are_friendly_pages(client, web_app, query_photo):
    from app.saved_searches import SavedSearch

    saved = web_app.extensions["fashion16"].saved
    unknown = client.get("/results/AAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404 and b"kept for 24 hours" in unknown.data and b"Back to search" in unknown.data
    address, _ = results_of(client, post_form(client, query_photo, "shoes.jpg", mode=None, catalog="photos"))
    kept = saved.get(address.split("/")[2].split("?")[0])
    expired = saved.save(SavedSearch(kept.catalog, kept.model_sha256, kept.probabilities, kept.embedding,
                                     kept.thumbnail, kept.thumbnail_type), now=kept.created - 2 * saved.ttl)
    gone = client.get(f"/results/{expired}")
    assert gone.status_code == 410 and b"These results have expired" in gone.data and b'role="alert"' in gone.data
    other_model = saved.save(SavedSearch(kept.catalog, "0" * 64, kept.probabilities, kept.embedding, kept.thumbnail,
                                         kept.thumbnail_type))
    outdated = client.get(f"/results/{other_model}")
    assert outdated.status_code == 410 and b"now uses another model" in outdated.data


def test_with_results_addresses_off_the_post_shows_the_results(settings, query_png):
    app = create_app(settings.with_(results=False), {"TESTING": True})
    client = app.test_client()
    response = post_form(client, query_png)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and len(TILE.findall(response.data)) == 20
    assert '<span class="chip" aria-current="true">' in html and '<a class="chip"' not in html  # nothing to re-run
    assert "data-saving" not in client.get("/").get_data(as_text=True)  # the script then posts the form itself
    src = re.search(r'class="query-image pixelated" src="data:image/png;base64,([^"]+)"', html).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(src))).size == (28, 28)
    assert "kept as a small thumbnail" not in html


def test_a_photo_searched_in_the_demo_is_told_what_the_demo_saw(client, query_photo):
    _, html = results_of(client, post_form(client, query_photo, "shoes.jpg", mode=None))
    assert "Your photo was searched as a grey silhouette" in words(html)
    seen = re.search(r'<img class="pixelated" src="data:image/png;base64,([^"]+)" alt="Your photo as the demo', html)
    assert Image.open(io.BytesIO(base64.b64decode(seen.group(1)))).size == (28, 28)


def test_large_upload_is_kept_as_a_small_thumbnail(client):
    photo = io.BytesIO()
    Image.new("RGB", (1200, 900), "white").save(photo, format="JPEG")
    _, html = results_of(client, post_form(client, photo.getvalue(), "photo.jpg", mode=None, catalog="photos"))
    src = re.search(r'class="query-image" src="data:image/jpeg;base64,([^"]+)"', html).group(1)
    assert max(Image.open(io.BytesIO(base64.b64decode(src))).size) == 256


def test_a_crop_box_on_the_form_searches_that_part(client, web_app, test_photos):
    shoes = Image.open(io.BytesIO(test_photos.read(int(np.flatnonzero(test_photos.labels == 6)[0])))).convert("RGB")
    wide = Image.new("RGB", (shoes.width * 2, shoes.height), "white")
    wide.paste(shoes, (shoes.width, 0))
    out = io.BytesIO()
    wide.save(out, "JPEG")
    response = client.post("/search", data={"image": (io.BytesIO(out.getvalue()), "two.jpg"), "catalog": "photos",
                                            "box": "0.5,0,0.5,1"})
    address, html = results_of(client, response)
    assert 'Looks like: <span class="category">Shoes</span>' in html
    kept = web_app.extensions["fashion16"].saved.get(address.split("/")[2].split("?")[0])
    assert kept.box == "0.5,0,0.5,1"
    thumb = Image.open(io.BytesIO(kept.thumbnail))
    assert abs(thumb.width / thumb.height - shoes.width / shoes.height) < 0.02  # the crop, not the wide picture
    bad = client.post("/search", data={"image": (io.BytesIO(out.getvalue()), "two.jpg"), "box": "0,0,2,2"})
    assert bad.status_code == 400 and b"Box must lie inside the picture" in bad.data and b'type="file"' in bad.data


@pytest.mark.parametrize("catalog", ["fashion-mnist", "photos"])
def test_an_item_page_shows_the_item_and_more_like_it(client, catalogs, catalog):
    found = catalogs[catalog]
    item = int(found.snapshot.ids()[42])
    category = found.class_names[int(found.item(item).categories[0])]
    response = client.get(f"/item/{catalog}/{item}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and len(TILE.findall(response.data)) == 20
    assert 'class="item-image' in html and f'src="/images/{catalog}/{item}?v={found.item(item).hashes[0]}"' in html
    assert f'<h1 id="item-heading">{category}</h1>' in html and f"<dt>Item</dt><dd>{item}</dd>" in html
    assert f'aria-current="true">{category}</a>' in html  # more like it in its own category first
    assert item not in shown(html) and len(shown(html)) == 20  # the item itself is left out
    assert set(re.findall(r'<span class="tile-category">([^<]+)</span>', html)) == {category}
    every = client.get(f"/item/{catalog}/{item}?mode=direct").get_data(as_text=True)
    assert 'aria-current="true">All categories' in every and item not in shown(every)
    assert shown(every)[0] == found.search(found.item_picture(item), k=2, mode="direct").hits[1].id
    assert "% match</span>" in html and "What does “match” mean?" in html


def test_an_item_page_leads_back_to_the_results(client, query_photo):
    address, html = results_of(client, post_form(client, query_photo, "shoes.jpg", mode=None, catalog="photos"))
    catalog, item, back = TILE_LINK.search(html).groups()
    page = client.get(f"/item/{catalog}/{item}?from={back}").get_data(as_text=True)
    assert f'<a href="/results/{back}">← Back to your results</a>' in page
    assert all(f == back for *_, f in TILE_LINK.findall(page))  # and from its similar items too
    assert "Back to your results" not in client.get(f"/item/{catalog}/{item}?from=../../x").get_data(as_text=True)


def test_bad_upload_reshows_the_form_with_a_message(client):
    response = post_form(client, b"%PDF-1.4 not a picture", "photo.jpg", mode="direct")
    html = response.data
    assert response.status_code == 400
    assert b'role="alert"' in html and b"The file is not an image" in html
    assert b'type="file" id="image"' in html and b'value="direct" checked' in html
    assert b'name="catalog" value="fashion-mnist"' in html  # the form comes back as it was filled in


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
    ("/item/fashion-mnist/3?category=Socks", 400), ("/item/3", 404), ("/no-such-page", 404), ("/search", 405),
    ("/results/nope", 404), ("/results/AAAAAAAAAAAAAAAA?mode=fast", 404),
])
def test_error_pages(client, path, status):
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "text/html"
    assert b'role="alert"' in response.data and b"Back to search" in response.data
