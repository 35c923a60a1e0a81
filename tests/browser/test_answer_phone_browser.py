"""The answer page on a small phone with a wide logo: nothing scrolls sideways and the 0–10
scale is one row of targets at least 24 px wide (WCAG 2.2 target size)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

from responses.tests.conftest import make_contact, make_invitation, make_survey
from tests.browser.conftest import chromium_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A 600 × 60 logo, as companies upload them: wider than any phone.
WIDE_LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="60" viewBox="0 0 600 60">'
    '<rect width="600" height="60" fill="#2b6cb0"/></svg>'
)
SCALE = """() => [...document.querySelectorAll('.r-score')].map(s => {
  const r = s.getBoundingClientRect();
  return {top: Math.round(r.top), width: r.width, right: r.right};
})"""


@pytest.mark.parametrize("language", ["en", "ru", "kk"])
def test_the_answer_page_fits_a_360_px_phone_with_a_logo(
    chromium_page: Page,  # noqa: F811
    company,
    language: str,
    output_path: str,
) -> None:
    survey = make_survey(company, logo_url="https://cdn.customer.test/logo-wide.svg")
    _invitation, token = make_invitation(survey, make_contact(company))
    page = chromium_page

    def logo(route: Route) -> None:
        route.fulfill(status=200, content_type="image/svg+xml", body=WIDE_LOGO)

    page.route("https://cdn.customer.test/**", logo)
    page.set_viewport_size({"width": 360, "height": 780})
    page.goto(f"/r/{token}/?lang={language}")
    assert page.locator("img.r-logo").evaluate("img => img.naturalWidth") == 600
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    scores = page.evaluate(SCALE)
    assert len(scores) == 11
    assert len({s["top"] for s in scores}) == 1, scores  # one row, not 6 + 5
    assert min(s["width"] for s in scores) >= 24, scores
    assert max(s["right"] for s in scores) <= 360
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"answer-360-{language}.png"), full_page=True)
