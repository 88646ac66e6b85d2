"""Driving Debian's headless Chromium for the browser tests and scripts/screenshots.py.

Pages are looked at at the sizes people use them: a laptop (1280x900) and a phone (390x844,
a touch screen: the phone layout, the camera button). axe-core (package.json, installed by
``DEV=1 scripts/setup.sh``) is injected into a page to find accessibility violations.
"""
from __future__ import annotations

import json
from pathlib import Path

from app.settings import ROOT

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
WAIT_SECONDS = 60
SERIOUS = ("serious", "critical")


def have_chromium() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def chromium(profile: Path):
    """A headless Chromium with its own profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1280, 900)
    return driver


def use_size(driver, size: str) -> None:
    """The viewport of a laptop or of a phone (390x844 CSS pixels, touch: a coarse pointer)."""
    width, height, mobile = SIZES[size]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": mobile, "maxTouchPoints": 5})
    driver.execute_cdp_cmd("Emulation.setEmitTouchEventsForMouse", {"enabled": mobile})


def wait(driver, seconds: float = WAIT_SECONDS):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds)


def axe_violations(driver, impacts: tuple[str, ...] = SERIOUS) -> list[dict]:
    """axe-core's violations of the current page at these impacts: rule id, impact, help, and the elements."""
    driver.execute_script(AXE.read_text())
    driver.set_script_timeout(WAIT_SECONDS)
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(r.violations)),"
        " e => done(JSON.stringify([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}])));")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in json.loads(found) if v["impact"] in impacts]


def scrolled_to_top_and_visible(driver, element) -> bool:
    """Whether ``element`` is wholly inside the viewport with the page not scrolled."""
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return window.scrollY === 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;", element)
