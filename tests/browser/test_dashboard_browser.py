"""The demo company's dashboard in a real browser: change the period and the segment."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_demo_dashboard_period_and_segment(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
    output_path: str,
) -> None:
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.get_by_test_id("nps")).to_be_visible()
    # A year, by month, segmented by city.
    page.locator("#id_period").select_option("365")
    page.locator("#id_segment").select_option("property:city")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("segments")).to_contain_text("Almaty")
    expect(page.get_by_test_id("segments")).to_contain_text("Rotterdam")
    assert "period=365" in page.url
    # The chart is drawn: one bar per month, and the interval band.
    bars = page.locator(".trend-chart rect.volume")
    assert 12 <= bars.count() <= 13
    expect(page.locator(".trend-chart path.ci-band").first).to_be_attached()
    page.locator("summary", has_text="Show the figures as a table").click()
    expect(page.get_by_test_id("trend-table")).to_be_visible()
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "dashboard-year-by-city.png"), full_page=True)
    # Seven days by channel.
    page.locator("#id_period").select_option("7")
    page.locator("#id_segment").select_option("channel")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("segments")).to_contain_text("Email")
    page.screenshot(path=str(out / "dashboard-week-by-channel.png"), full_page=True)
    assert (out / "dashboard-year-by-city.png").stat().st_size > 10_000
