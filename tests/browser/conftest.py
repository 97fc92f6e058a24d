"""Playwright fixtures: a real Chromium driving the live test server.

Playwright's sync API runs an asyncio event loop in this thread, so Django's "no sync DB calls
inside an event loop" guard would trip on every query the fixtures make: it is switched off
here, for the browser tests' process only.
"""

import os
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str):
    """Skip the browser tests, or fail them when the run says a browser is required."""
    if os.environ.get("RELANCE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RELANCE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (set RELANCE_REQUIRE_BROWSER=1 to make this a failure)")


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for a module's tests."""
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context (no cookies) and page, desktop-sized."""
    context = chromium.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
