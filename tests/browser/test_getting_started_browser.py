"""A new company's overview in a real browser: the getting-started steps tick off, hide and
come back (a real form POST with its CSRF token), and fit a phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from companies.models import Company
from conftest import PASSWORD, make_company
from responses.tests.conftest import make_survey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_getting_started_ticks_hides_and_comes_back(
    chromium_page: Page,
    output_path: str,
) -> None:
    company = make_company("Acme Coffee", "owner@acme.test")
    Company.objects.filter(pk=company.pk).update(reply_to="care@acme.test")
    make_survey(company)
    page = chromium_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill("owner@acme.test")
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()

    steps = page.get_by_test_id("getting-started")
    expect(steps).to_contain_text("2 of 6 done")
    expect(steps.locator("li.done")).to_have_count(2)
    expect(steps.locator('li[data-step="sender"]')).to_contain_text("Done")
    expect(steps.get_by_role("link", name="Import your contacts")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "getting-started-390.png"), full_page=True)

    page.get_by_test_id("getting-started-hide").click()
    expect(page.get_by_text("Getting started is hidden.")).to_be_visible()
    expect(steps).to_have_count(0)
    page.reload()
    expect(steps).to_have_count(0)

    page.get_by_test_id("getting-started-show").click()
    expect(steps).to_be_visible()
    expect(steps).to_contain_text("2 of 6 done")
