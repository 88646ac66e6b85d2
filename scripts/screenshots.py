"""Screenshots of every page at laptop and phone size, from real test photos searched in the real photo catalog.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Needs the built stores (`python -m app index ensure`), Chromium and the dev requirements
(`DEV=1 bash scripts/setup.sh`). Serves the app from this process on a free port, uploads a
photo from datasets/clothing-photos/test/ (never in the catalog) as a person would, and saves
home, results and item pages, plus the paper's demo (with a colour photo searched in it) and the
API page, as PNGs of at most 400 kB each. Also
prints axe-core's serious and critical violations of each page (there should be none).
"""
from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from PIL import Image  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from app.photo_dataset import CLASS_NAMES, load_photos  # noqa: E402
from app.settings import Settings  # noqa: E402
from browser_helpers import SIZES, axe_violations, chromium, use_size, wait  # noqa: E402

MAX_BYTES = 400 * 1024
QUERY = ("Shirt", 12)  # a shirt the model takes for a T-shirt (43%, Shirt 25%): what the category chips are for


def save_png(png: bytes, path: Path) -> int:
    """Write a screenshot, losslessly optimised, or in 256 colours when still over MAX_BYTES."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    for attempt in (img, img.quantize(256, method=Image.Quantize.MEDIANCUT)):
        out = io.BytesIO()
        attempt.save(out, "PNG", optimize=True)
        if out.tell() <= MAX_BYTES:
            break
    path.write_bytes(out.getvalue())
    return out.tell()


def query_photo(folder: Path) -> Path:
    photos = load_photos("test")
    name, nth = QUERY
    index = [i for i, label in enumerate(photos.labels) if CLASS_NAMES[label] == name][nth]
    path = folder / f"{name.lower()}.jpg"
    path.write_bytes(photos.read(index))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from selenium.webdriver.common.by import By

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        app = create_app(Settings.from_env().with_(results_dir=tmp / "results"))
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.server_port}"
        photo = query_photo(tmp)
        driver = chromium(tmp / "profile")
        problems = 0
        try:
            for size in SIZES:
                use_size(driver, size)

                def shot(page: str) -> None:
                    nonlocal problems
                    path = args.out / f"{page}-{size}.png"
                    n = save_png(driver.get_screenshot_as_png(), path)
                    bad = axe_violations(driver)
                    problems += len(bad)
                    print(f"{path}: {n / 1024:.0f} kB, axe serious/critical: {bad or 'none'}")

                driver.get(base + "/")
                driver.find_element(By.ID, "image").send_keys(str(photo))
                wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-preview]").is_displayed())
                shot("home")
                driver.find_element(By.CSS_SELECTOR, "[data-submit]").click()
                wait(driver).until(lambda d: "/results/" in d.current_url and d.find_elements(By.CSS_SELECTOR, ".tile"))
                wait(driver).until(lambda d: d.execute_script(
                    "return [...document.querySelectorAll('.tile img')].slice(0, 8).every(i => i.complete)"))
                shot("results")
                driver.find_elements(By.CSS_SELECTOR, ".tile a")[0].click()
                wait(driver).until(lambda d: "/item/" in d.current_url)
                wait(driver).until(lambda d: d.execute_script(
                    "return document.querySelector('.item-image').complete"))
                shot("item")
                driver.get(base + "/?catalog=fashion-mnist")
                shot("demo")
                driver.find_element(By.ID, "image").send_keys(str(photo))
                wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-preview]").is_displayed())
                driver.find_element(By.CSS_SELECTOR, "[data-submit]").click()
                wait(driver).until(lambda d: "/results/" in d.current_url and d.find_elements(By.CSS_SELECTOR, ".tile"))
                shot("demo-results")
                driver.get(base + "/api/docs")
                shot("api-docs")
        finally:
            driver.quit()
            httpd.shutdown()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
