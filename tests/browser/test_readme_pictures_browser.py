"""The README's pictures, taken from the demo company in a real browser: its dashboard at
1280 px (from the top to the end of its trend chart) and a survey's answer page on a 390 px
phone (its first screen), each asserted to be the page it claims to be, without sideways scroll.

``make readme-pictures`` runs these and copies the two PNGs to docs/img/.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from companies.models import Company
from responses.tests.conftest import make_contact, make_invitation
from surveys.models import Survey, SurveyStatus
from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

if TYPE_CHECKING:  # Playwright's typed dicts live in a private module: for the checker only
    from playwright._impl._api_structures import Clip, ViewportSize

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _save(page: Page, output_path: str, name: str, *, height: float | None = None) -> Path:
    """The screen as the visitor sees it (or its top ``height`` pixels, full width)."""
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    viewport = page.viewport_size
    assert viewport is not None
    clip: Clip | None = None
    if height is not None:
        clip = {"x": 0, "y": 0, "width": viewport["width"], "height": height}
    page.screenshot(
        path=str(path), full_page=clip is not None, clip=clip, animations="disabled", caret="hide"
    )
    return path


def test_readme_picture_of_the_demo_dashboard(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
) -> None:
    page = chromium_page
    page.set_viewport_size(DESKTOP)
    log_in_as_demo_owner(page, settings, tmp_path)
    # The demo company has answers: its overview says where to go, not how to get started.
    expect(page.get_by_test_id("next-steps")).to_be_visible()
    expect(page.get_by_test_id("getting-started")).to_have_count(0)
    page.get_by_test_id("next-steps").get_by_role("link", name="Watch your NPS").click()
    expect(page.locator("h1")).to_have_text("Dashboard")
    # A year by month: the trend with its confidence band, twelve points.
    page.locator("#id_period").select_option("365")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("nps")).to_be_visible()
    expect(page.locator(".trend-chart path.ci-band").first).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    trend = page.get_by_test_id("trend").bounding_box()
    assert trend is not None

    # From the top of the page to the end of the trend card: headline, interval, chart.
    picture = _save(page, output_path, "dashboard.png", height=trend["y"] + trend["height"] + 24)

    assert picture.stat().st_size > 20_000


def test_readme_picture_of_the_answer_page_on_a_phone(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)  # creates the demo company and its surveys
    page.context.clear_cookies()  # the respondent is nobody's session
    company = Company.objects.get(name="Demo Coffee Co.")
    survey = (
        Survey.objects.for_company(company)
        .filter(status=SurveyStatus.ACTIVE)
        .order_by("created_at")
        .first()
    )
    assert survey is not None
    contact = make_contact(company, email="readme@example.com", name="Aigerim", language="en")
    _invitation, token = make_invitation(survey, contact)
    page.set_viewport_size(PHONE)
    page.goto(f"/r/{token}/")
    expect(page.locator(".r-score")).to_have_count(11)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    picture = _save(page, output_path, "answer-phone.png")

    assert picture.stat().st_size > 10_000
