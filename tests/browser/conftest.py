"""Real Chromium through Playwright, against pytest-django's live server.

Chromium comes from Debian (/usr/bin/chromium); Playwright never downloads a browser here.
Without it the browser tests skip with the install command, unless REQUIRE_BROWSER=1 (CI),
where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect, sync_playwright

from tests.waits import WAIT_SECONDS

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a closed network: no background calls home, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# The browser's own zone: not the default UTC, so that the sign-up form's guess is visible.
BROWSER_TIME_ZONE = "Asia/Almaty"


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"Chromium not installed at {CHROMIUM}: apt-get install chromium"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def chromium_page(monkeypatch: pytest.MonkeyPatch, live_server) -> Iterator[Page]:
    """A fresh page in a fresh headless Chromium (one browser per test: tests stay apart).

    Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
    from a thread with a running loop; the test body's own queries are synchronous and safe,
    which is what DJANGO_ALLOW_ASYNC_UNSAFE says (the documented pytest-playwright recipe).
    It is set only while the browser is open.
    """
    require_chromium()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": 1280, "height": 860},
            locale="en-US",
            timezone_id=BROWSER_TIME_ZONE,
        )
        # Actions and assertions wait as long as every other test waits (tests/waits.py):
        # Playwright's own 5 s for `expect` flakes on two busy cores.
        context.set_default_timeout(WAIT_SECONDS * 1000)
        expect.set_options(timeout=WAIT_SECONDS * 1000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


def log_in_as_demo_owner(page: Page, settings: Any, var_dir: Path) -> None:
    """Create the demo company (``ensure_demo``, its credentials under ``var_dir``) and log
    in as its owner."""
    settings.VAR_DIR = var_dir
    call_command("ensure_demo", stdout=StringIO())
    credentials = json.loads((var_dir / "demo-credentials.json").read_text())
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(credentials["owner_email"])
    page.locator("input[name=password]").fill(credentials["owner_password"])
    page.get_by_role("button", name="Log in").click()
