"""The team pages' frame in a real browser: every link of the main navigation is visible, at a
desktop and at a phone width, in English and in Russian, and no page scrolls sideways."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The links that are not fully inside the navigation's visible box or the window.
CLIPPED_LINKS = """() => {
  const nav = document.querySelector('.mainnav');
  const box = nav.getBoundingClientRect();
  return [...nav.querySelectorAll('a')].filter(a => {
    const r = a.getBoundingClientRect();
    return r.width === 0 || r.left < box.left - 0.5 || r.right > box.right + 0.5
      || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5
      || r.left < 0 || r.right > window.innerWidth;
  }).map(a => a.textContent.trim());
}"""
SIDEWAYS = "() => document.documentElement.scrollWidth - window.innerWidth"


def test_the_main_navigation_is_never_clipped(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
    live_server,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    page.get_by_role("link", name="Dashboard").click()
    dashboard = page.url
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    for language in ("en", "ru"):
        page.context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        for width in (1920, 1280, 390):
            page.set_viewport_size({"width": width, "height": 860})
            page.goto(dashboard)
            links = page.locator(".mainnav a")
            assert links.count() >= 9  # an owner sees every section, API keys and settings
            assert page.evaluate(CLIPPED_LINKS) == [], (language, width)
            assert page.evaluate(SIDEWAYS) <= 0, (language, width)
            page.screenshot(path=str(out / f"nav-{language}-{width}.png"))


def test_no_team_page_scrolls_sideways(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    live_server,
) -> None:
    """Every page of the navigation, and a survey's editor (its SMS preview lines were one
    2,950 px row), at a desktop and a phone width, in English and in Russian."""
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    page.get_by_role("link", name="Surveys").first.click()
    page.locator("a.row-title").first.click()
    editor = page.url
    pages = [str(u) for u in page.locator(".mainnav a").evaluate_all("a => a.map(x => x.href)")]
    pages.append(editor)
    for language in ("en", "ru"):
        page.context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 860})
            wide = []
            for address in pages:
                page.goto(address)
                if page.evaluate(SIDEWAYS) > 0:
                    wide.append((address, page.evaluate("document.documentElement.scrollWidth")))
            assert wide == [], (language, width)
