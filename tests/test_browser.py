"""The pages in real headless Chromium, at a laptop's 1280x900 and a phone's 390x844 (touch).

What a shopper does: picks a 12-megapixel phone photo (shrunk in the browser before it is
sent: the bytes the server received are measured here), crops it, searches, reloads and
shares the results' address, re-searches in another category, opens an item; the same
without JavaScript; and axe-core checks every page for accessibility violations.
Skipped only where Debian's chromium / chromium-driver are not installed; CI installs them
(and axe-core: `DEV=1 bash scripts/setup.sh`). Screenshots for the docs: scripts/screenshots.py.
"""
from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from werkzeug.formparser import parse_form_data
from werkzeug.serving import make_server

from browser_helpers import AXE, SIZES, axe_violations, chromium, have_chromium, scrolled_to_top_and_visible, \
    use_size, wait

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="needs Debian's chromium and chromium-driver (/usr/bin/"
                                 "chromium, /usr/bin/chromedriver): apt-get install chromium chromium-driver")]
UPLOAD_LIMIT = 600 * 1024  # what a 12-megapixel photo may cost a phone on the way up


class Recorder:
    """WSGI middleware keeping every POST body as the server received it: the bytes a phone had to send."""

    def __init__(self, app):
        self.app, self.posts = app, []

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            self.posts.append({"path": environ["PATH_INFO"], "length": length, "body": body,
                               "type": environ.get("CONTENT_TYPE", "")})
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def form(self, n: int = -1) -> tuple[dict, dict]:
        """(fields, files) of the n-th recorded post, parsed as the app parses it."""
        post = self.posts[n]
        _, form, files = parse_form_data({"wsgi.input": io.BytesIO(post["body"]), "REQUEST_METHOD": "POST",
                                          "CONTENT_LENGTH": str(post["length"]), "CONTENT_TYPE": post["type"]})
        return dict(form), {k: f.read() for k, f in files.items()}


@pytest.fixture(scope="module")
def recorder(web_app) -> Recorder:
    return Recorder(web_app.wsgi_app)


@pytest.fixture(scope="module")
def base_url(web_app, recorder):
    """The app on a free loopback port, served by Werkzeug from a thread, every POST recorded."""
    httpd = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture()
def phone(browser):
    use_size(browser, "phone")
    yield browser
    use_size(browser, "desktop")


@pytest.fixture(scope="module")
def dress(test_photos) -> bytes:
    """A real photo from the test split (not in the catalog): a dress."""
    return test_photos.read(int(test_photos.labels.tolist().index(0)) + 2)


@pytest.fixture(scope="module")
def query_file(dress, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("query") / "dress.jpg"
    path.write_bytes(dress)
    return path


@pytest.fixture(scope="module")
def camera_photo(dress, tmp_path_factory) -> Path:
    """The dress as a 12-megapixel phone JPEG stored sideways with EXIF orientation 6 (turn 90° clockwise)."""
    upright = Image.open(io.BytesIO(dress)).convert("RGB")
    scale = (12e6 / (upright.width * upright.height)) ** 0.5
    upright = upright.resize((round(upright.width * scale), round(upright.height * scale)), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 6, (upright.height, upright.width, 3))  # sensor noise: real bytes
    upright = Image.fromarray(np.clip(np.asarray(upright) + noise, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path_factory.mktemp("camera") / "IMG_0001.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=92, exif=exif)
    return path


def by_css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def tiles(driver) -> list:
    return by_css(driver, "ol.grid li.tile")


def shown_ids(driver) -> list[str]:
    return [re.search(r"/item/[^/]+/(\d+)", a.get_attribute("href")).group(1) for a in by_css(driver, ".tile a")]


def choose(driver, base_url: str, photo: Path, path: str = "/") -> None:
    """Open the form and pick a photo, as the file picker would; wait for the script's preview."""
    driver.get(base_url + path)
    by_css(driver, "#image")[0].send_keys(str(photo))
    wait(driver).until(lambda d: by_css(d, "[data-preview]")[0].is_displayed())


def search(driver) -> str:
    """Press Search; wait for the results page; returns its address."""
    by_css(driver, "[data-submit]")[0].click()
    wait(driver).until(lambda d: "/results/" in d.current_url and len(tiles(d)) == 20)
    check_results_page(driver)
    return driver.current_url


def check_results_page(driver) -> None:
    """Twenty ranked tiles, each with a "% match" in words, and the visible images really loaded."""
    matches = [int(t.text.split("% match")[0].split()[-1]) for t in by_css(driver, ".tile .score")]
    assert len(matches) == 20 and matches == sorted(matches, reverse=True) and all(0 <= m <= 100 for m in matches)
    wait(driver).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('.query-image, .tile img')).slice(0, 7)"
        ".every(img => img.complete && img.naturalWidth > 0)"))


def test_a_12_megapixel_phone_photo_is_shrunk_before_it_is_sent(phone, base_url, recorder, camera_photo, catalogs,
                                                                  dress):
    assert camera_photo.stat().st_size > 3 * UPLOAD_LIMIT
    choose(phone, base_url, camera_photo)
    assert scrolled_to_top_and_visible(phone, by_css(phone, "[data-submit]")[0]), "Search must stay in view"
    # What the page shows while it works, kept in sessionStorage (it outlives the move to the results page).
    phone.execute_script("""
        const status = document.querySelector('[data-status-text]'), bar = document.querySelector('[data-progress]');
        const seen = [];
        const keep = () => { seen.push([status.textContent, bar.value]); sessionStorage.seen = JSON.stringify(seen); };
        new MutationObserver(keep).observe(status, {childList: true, characterData: true, subtree: true});""")
    before = len(recorder.posts)
    by_css(phone, "[data-submit]")[0].click()
    wait(phone).until(lambda d: "/results/" in d.current_url and len(tiles(d)) == 20)
    seen = [text for text, _ in json.loads(phone.execute_script("return sessionStorage.seen"))]
    phone.execute_script("sessionStorage.clear()")
    sent = recorder.posts[before:]
    assert [p["path"] for p in sent] == ["/api/search"] and sent[0]["length"] <= UPLOAD_LIMIT
    assert re.fullmatch(r"Sending your photo \(\d+ kB\)…", seen[0]) and seen[-1] == "Searching…"  # progress shown
    fields, files = recorder.form(before)
    received = Image.open(io.BytesIO(files["image"]))
    upright = ImageOps.exif_transpose(Image.open(camera_photo))
    assert max(received.size) == 1600 and (received.width < received.height) == (upright.width < upright.height)
    assert fields["catalog"] == "photos" and fields["mode"] == "soft" and fields["box"] == ""
    expected = catalogs["photos"].class_names[catalogs["photos"].search(dress).category]
    assert by_css(phone, "#query-heading")[0].text.startswith(f"Looks like: {expected}")


def test_results_have_an_address_that_reloads_and_refines_without_a_new_upload(phone, base_url, recorder,
                                                                               query_file):
    choose(phone, base_url, query_file)
    address = search(phone)
    first = shown_ids(phone)
    phone.refresh()
    wait(phone).until(lambda d: len(tiles(d)) == 20)
    assert phone.current_url == address and shown_ids(phone) == first  # a reload shows the same results
    phone.get(address)  # opened afresh, as a shared link is
    wait(phone).until(lambda d: len(tiles(d)) == 20)
    assert shown_ids(phone) == first
    posts = len(recorder.posts)
    chips = [c for c in by_css(phone, ".chips-nav > .chips a.chip") if c.text != "All categories"]
    assert [c.get_attribute("aria-current") for c in chips].count("true") == 1  # the results' category is marked
    other = next(c for c in chips if c.get_attribute("aria-current") != "true")
    name = other.text.replace(other.find_element("css selector", ".chip-note").text, "").strip()
    other.click()
    wait(phone).until(lambda d: "category=" in d.current_url and len(tiles(d)) == 20)
    check_results_page(phone)
    assert {t.text for t in by_css(phone, ".tile-category")} == {name}
    assert by_css(phone, ".chips-nav > .chips a.chip[aria-current]")[0].text.startswith(name)
    assert len(recorder.posts) == posts  # no new upload


def test_an_item_page_opens_from_a_result(phone, base_url, query_file):
    choose(phone, base_url, query_file)
    address = search(phone)
    first = by_css(phone, ".tile a")[0]
    item_id = shown_ids(phone)[0]
    category = by_css(phone, ".tile-category")[0].text
    first.click()
    wait(phone).until(lambda d: f"/item/photos/{item_id}" in d.current_url and len(tiles(d)) == 20)
    check_results_page(phone)
    assert by_css(phone, "#item-heading")[0].text == category
    image = by_css(phone, ".item-image")[0]
    assert re.search(f"/images/photos/{item_id}\\?v=[0-9a-f]{{16}}$", image.get_attribute("src"))
    assert phone.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
    assert item_id not in shown_ids(phone)  # the item itself is left out of "more like this"
    by_css(phone, ".back a")[0].click()
    wait(phone).until(lambda d: d.current_url == address)


def test_a_crop_box_moved_by_pointer_and_keyboard_is_sent(browser, base_url, recorder, query_file):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    choose(browser, base_url, query_file)
    box, field = by_css(browser, "[data-crop-box]")[0], by_css(browser, "[data-box]")[0]
    assert field.get_attribute("value") == ""  # the whole photo until the box is moved
    handle = by_css(browser, "[data-handle=se]")[0]
    ActionChains(browser).click_and_hold(handle).move_by_offset(-40, -60).release().perform()
    dragged = [float(v) for v in field.get_attribute("value").split(",")]
    assert dragged[:2] == [0, 0] and 0.5 < dragged[2] < 1 and 0.5 < dragged[3] < 1
    browser.execute_script("arguments[0].focus()", box)
    box.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_DOWN, Keys.SHIFT + Keys.ARROW_LEFT)
    moved = [float(v) for v in field.get_attribute("value").split(",")]
    assert moved[0] == pytest.approx(0.02) and moved[1] == pytest.approx(0.02)
    assert moved[2] == pytest.approx(dragged[2] - 0.02) and moved[3] == pytest.approx(dragged[3])
    assert "wide" in by_css(browser, "[data-crop-state]")[0].get_attribute("textContent")  # said to screen readers
    posts = len(recorder.posts)
    search(browser)
    sent_box = recorder.form(posts)[0]["box"]
    assert [float(v) for v in sent_box.split(",")] == pytest.approx(moved, abs=1e-4)


def test_a_photo_dropped_anywhere_or_pasted_is_taken(browser, base_url):
    browser.get(base_url + "/")
    for event in ("drop", "paste"):
        browser.execute_script("""
            const kind = arguments[0];
            const canvas = document.createElement('canvas');
            canvas.width = 64; canvas.height = 48;
            canvas.getContext('2d').fillRect(8, 8, 40, 30);
            canvas.toBlob(blob => {
              const data = new DataTransfer();
              data.items.add(new File([blob], kind + '.png', {type: 'image/png'}));
              const event = kind === 'drop'
                ? new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true})
                : new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});
              (kind === 'drop' ? document.querySelector('.site-footer') : document.body).dispatchEvent(event);
            }, 'image/png');""", event)
        wait(browser).until(lambda d: d.execute_script(
            "return document.getElementById('image').files.length === 1 && "
            "document.getElementById('image').files[0].name === arguments[0]", f"{event}.png"))
        wait(browser).until(lambda d: by_css(d, "[data-preview]")[0].is_displayed())
        assert browser.current_url == base_url + "/"  # a drop outside the box did not navigate away


def test_without_javascript_the_form_posts_the_photo_itself(browser, base_url, recorder, query_file):
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        browser.get(base_url + "/")
        by_css(browser, "#image")[0].send_keys(str(query_file))
        posts = len(recorder.posts)
        by_css(browser, "[data-submit]")[0].click()
        wait(browser).until(lambda d: "/results/" in d.current_url and len(tiles(d)) == 20)
        assert recorder.posts[posts]["path"] == "/search"  # the plain form post, answered 303 to the results
        assert recorder.form(posts)[1]["image"] == query_file.read_bytes()
        assert not by_css(browser, "[data-share]")[0].is_displayed()  # the script's button stays hidden
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


@pytest.mark.skipif(not AXE.exists(), reason="needs axe-core: `npm ci` (DEV=1 bash scripts/setup.sh installs it)")
@pytest.mark.parametrize("size", list(SIZES))
def test_pages_have_no_serious_accessibility_violations(browser, base_url, query_file, size):
    use_size(browser, size)
    try:
        found = {}
        browser.get(base_url + "/")
        found["home"] = axe_violations(browser)
        choose(browser, base_url, query_file)
        found["home with a photo"] = axe_violations(browser)
        search(browser)
        found["results"] = axe_violations(browser)
        by_css(browser, ".tile a")[0].click()
        wait(browser).until(lambda d: "/item/" in d.current_url and len(tiles(d)) == 20)
        found["item"] = axe_violations(browser)
        for page in ("/?catalog=fashion-mnist", "/api/docs", "/results/AAAAAAAAAAAAAAAA"):
            browser.get(base_url + page)
            found[page] = axe_violations(browser)
    finally:
        use_size(browser, "desktop")
    assert not any(found.values()), {page: v for page, v in found.items() if v}


@pytest.mark.skipif(not AXE.exists(), reason="needs axe-core: `npm ci` (DEV=1 bash scripts/setup.sh installs it)")
def test_the_accessibility_check_finds_what_it_should(browser, base_url):
    """The check above can fail: a button without a name on the page is a critical violation."""
    browser.get(base_url + "/")
    browser.execute_script("document.querySelector('main').append(document.createElement('button'))")
    assert "button-name" in {v["id"] for v in axe_violations(browser)}


def test_keyboard_focus_is_visible(browser, base_url):
    from selenium.webdriver.common.keys import Keys

    browser.get(base_url + "/item/photos/0")
    wait(browser).until(lambda d: len(tiles(d)) == 20)
    link = tiles(browser)[0].find_element("tag name", "a")
    browser.execute_script("arguments[0].focus()", link)
    link.send_keys(Keys.SHIFT)  # keyboard interaction, so :focus-visible applies
    assert browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", link) == "solid"


def test_phone_width_has_no_sideways_scrolling(phone, base_url, query_file):
    choose(phone, base_url, query_file)
    pages = [search(phone), base_url + "/", base_url + "/item/photos/0", base_url + "/item/fashion-mnist/0",
             base_url + "/?catalog=fashion-mnist", base_url + "/api/docs"]
    for page in pages:
        phone.get(page)
        overflow = phone.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page} scrolls sideways by {overflow}px at phone width"
    phone.get(base_url + "/")
    assert by_css(phone, "[data-camera]")[0].is_displayed()  # a touch screen: the camera is one tap away
