"""A newcomer in a real browser: sign up, confirm the email, land in their company.

Also: a member of two companies switches between them from the top bar.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from companies.models import Company
from companies.selectors import memberships_of_user
from companies.services import company_create
from conftest import PASSWORD, make_company, make_user
from tests.browser.conftest import BROWSER_TIME_ZONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/accounts/confirm-email/[^\s\"'<>]+")


def _confirmation_link(to: str, timeout: float = 10.0) -> str:
    """The confirm link of the newest mail to ``to`` (sent by the live server's thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in reversed(mail.outbox):
            if to in message.to:
                match = CONFIRM_LINK.search(str(message.body))
                assert match, f"no confirmation link in: {message.body}"
                return match.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no email to {to} after {timeout}s; outbox: {mail.outbox}")


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes: a blank page?"


def test_sign_up_confirm_and_land_in_the_company(
    chromium_page: Page, live_server, mailoutbox, output_path: str
):
    page = chromium_page
    email = "newcomer@brewery.test"

    page.goto("/accounts/signup/")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.get_by_label("Company name").fill("Northwind Brewery")
    page.locator("select[name=industry]").select_option("hospitality")
    time_zone = page.locator("select[name=time_zone]")
    expect(time_zone).to_have_value(BROWSER_TIME_ZONE)  # guessed from the browser
    time_zone.select_option("Asia/Tokyo")  # and the person's own choice wins
    page.get_by_role("button", name="Create account").click()

    # Nothing is open before the address is confirmed.
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check your inbox")

    link = _confirmation_link(email)
    # The link names the live server; open it there whatever host the mail used.
    path = re.sub(r"^https?://[^/]+", "", link)
    page.goto(path)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Confirm your email")
    page.get_by_role("button", name="Confirm and continue").click()

    # Confirmed, logged in, and in the company the sign-up created.
    company = Company.objects.get(name="Northwind Brewery")
    page.wait_for_url(re.compile(rf"/c/{re.escape(company.slug)}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Northwind Brewery")
    expect(page.get_by_test_id("company-switcher")).to_contain_text("Northwind Brewery")
    assert company.time_zone == "Asia/Tokyo"
    assert company.industry == "hospitality"
    [membership] = memberships_of_user(user=company.memberships.get().user)
    assert membership.role == "owner"

    screenshot = Path(output_path) / "signup-first-page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    _assert_png(screenshot)


def test_switch_between_two_companies(chromium_page: Page, live_server, output_path: str):
    acme = make_company("Acme Coffee", "two-hats@acme.test")
    owner = acme.memberships.get().user
    globex = company_create(name="Globex Tea", owner=owner, industry="retail")
    make_user("bystander@elsewhere.test")  # a user with no part in this

    page = chromium_page
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(owner.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    # Two companies and none used yet: the chooser.
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a company")
    page.get_by_role("link", name=re.compile("Acme Coffee")).click()
    page.wait_for_url(re.compile(rf"/c/{re.escape(acme.slug)}/$"))

    switcher = page.get_by_test_id("company-switcher")
    expect(switcher.locator("summary")).to_contain_text("Acme Coffee")
    switcher.locator("summary").click()
    switcher.get_by_role("link", name=re.compile("Globex Tea")).click()

    page.wait_for_url(re.compile(rf"/c/{re.escape(globex.slug)}/$"))
    expect(switcher.locator("summary")).to_contain_text("Globex Tea")
    expect(switcher.locator("summary")).not_to_contain_text("Acme Coffee")
    expect(page.get_by_role("heading", level=1)).to_have_text("Globex Tea")

    # The last company is remembered: home now goes straight there.
    page.goto("/")
    page.wait_for_url(re.compile(rf"/c/{re.escape(globex.slug)}/$"))
    screenshot = Path(output_path) / "switched-company.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))
    _assert_png(screenshot)
