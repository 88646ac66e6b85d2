"""The pages in real headless Chromium: a real photo uploaded, results, "more like this", phone width.

Saves a screenshot of the results page: to the test's temp folder, or over the README's
docs/screenshot-results.png with UPDATE_SCREENSHOT=1 (so test runs leave the tree clean).
Skipped only where Debian's chromium / chromium-driver are not installed; CI installs them.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot-results.png"
WAIT_SECONDS = 60

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
                                       "/usr/bin/chromedriver): apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def base_url(web_app):
    """The app on a free loopback port, served by Werkzeug from a thread."""
    httpd = make_server("127.0.0.1", 0, web_app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def query_file(test_photos, tmp_path_factory) -> Path:
    """A real phone photo from the test split (not in the catalog): a dress."""
    path = tmp_path_factory.mktemp("query") / "dress.jpg"
    path.write_bytes(test_photos.read(int(test_photos.labels.tolist().index(0)) + 2))
    return path


def wait(driver):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS)


def tiles(driver) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "ol.grid li.tile")


def check_results_page(driver) -> None:
    """Twenty ranked tiles, each with a score, and the visible images really loaded."""
    from selenium.webdriver.common.by import By

    wait(driver).until(lambda d: len(tiles(d)) == 20)
    scores = [float(t.find_element(By.CSS_SELECTOR, ".score").text) for t in tiles(driver)]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    loaded = driver.execute_script(
        "return Array.from(document.querySelectorAll('.query-image, .tile img')).slice(0, 9)"
        ".map(img => img.complete && img.naturalWidth > 0)")
    assert all(loaded), loaded


def test_upload_then_more_like_this(browser, base_url, query_file, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    browser.get(base_url + "/")
    assert "Search by photo" in browser.title
    browser.find_element(By.ID, "image").send_keys(str(query_file))
    preview = browser.find_element(By.CSS_SELECTOR, "[data-preview]")
    wait(browser).until(lambda d: preview.is_displayed())  # the script's preview of the chosen file
    browser.find_element(By.CSS_SELECTOR, "input[name=catalog][value=photos]").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=mode][value=routed]").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    check_results_page(browser)
    assert browser.find_element(By.ID, "query-heading").text.startswith("Looks like Dress")
    assert all("/images/photos/" in img.get_attribute("src")
               for img in browser.find_elements(By.CSS_SELECTOR, ".tile img"))
    screenshot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000

    first = tiles(browser)[0].find_element(By.TAG_NAME, "a")
    item_url = first.get_attribute("href")
    first.click()
    wait(browser).until(EC.url_to_be(item_url))
    check_results_page(browser)
    item_id = item_url.rsplit("/", 1)[1].split("?")[0]
    query_image = browser.find_element(By.CSS_SELECTOR, ".query-image").get_attribute("src")
    assert re.search(f"/images/photos/{item_id}\\?v=[0-9a-f]{{16}}$", query_image)


def test_keyboard_focus_is_visible(browser, base_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(base_url + "/item/photos/0")
    wait(browser).until(lambda d: len(tiles(d)) == 20)
    link = tiles(browser)[0].find_element(By.TAG_NAME, "a")
    browser.execute_script("arguments[0].focus()", link)
    link.send_keys(Keys.SHIFT)  # keyboard interaction, so :focus-visible applies
    outline = browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", link)
    assert outline == "solid"


def test_phone_width_has_no_sideways_scrolling(browser, base_url):
    browser.set_window_size(390, 844)
    try:
        for path in ("/", "/item/photos/0", "/item/fashion-mnist/0"):
            browser.get(base_url + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"
    finally:
        browser.set_window_size(1280, 900)
