"""Two-factor sign-in in real Chromium: a member turns on an authenticator app from the user
menu and signs in with its code; a passkey is registered and signs in on its own, through a
virtual authenticator that Chromium's DevTools protocol provides (the WebAuthn ceremony runs
for real in the browser and in allauth/fido2; only the hardware is simulated)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from playwright.sync_api import Page, expect

from conftest import PASSWORD, make_company

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "owner@acme.test"


@pytest.fixture(autouse=True)
def _codes_of_neighbouring_periods(settings: Any) -> None:
    """Accept the code of the 30-second period before or after the current one, so that a
    code computed here and checked a few seconds later on a busy machine does not fall into
    the next period (production keeps allauth's default of the current period only)."""
    settings.MFA_TOTP_TOLERANCE = 1


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def log_in_with_password(page: Page) -> None:
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(EMAIL)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()


def log_out(page: Page) -> None:
    page.locator("details.usermenu summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("input[name=login]")).to_be_visible()


def open_two_factor_page(page: Page) -> None:
    page.locator("details.usermenu summary").click()
    page.get_by_role("link", name="Two-factor authentication").click()
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()


def confirm_password(page: Page) -> None:
    """Changing sign-in methods asks for the password again (allauth's reauthentication)."""
    expect(page.get_by_role("heading", name="Confirm Access")).to_be_visible()
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()


def test_enable_authenticator_app_and_sign_in_with_it(
    chromium_page: Page, output_path: str
) -> None:
    company = make_company("Acme Coffee", EMAIL)
    page = chromium_page
    log_in_with_password(page)
    expect(page.get_by_role("heading", name="Acme Coffee")).to_be_visible()

    open_two_factor_page(page)
    page.get_by_role("link", name="Activate").click()
    confirm_password(page)

    expect(page.get_by_role("heading", name="Activate Authenticator App")).to_be_visible()
    qr = page.locator("img[src^='data:image/svg+xml']")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 0  # the QR code renders (made here, inline)
    secret = page.locator("#authenticator_secret").input_value()
    page.locator("input[name=code]").fill(totp_code(secret))
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "totp-activate.png"), full_page=True)
    page.get_by_role("button", name="Activate").click()

    # Activation leads to the recovery codes, shown once here to be kept somewhere safe.
    expect(page.get_by_role("heading", name="Recovery Codes")).to_be_visible()
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    assert all(code.isdigit() and len(code) == 8 for code in codes)
    open_two_factor_page(page)
    expect(page.get_by_text("Authentication using an authenticator app is active.")).to_be_visible()
    page.screenshot(path=str(out / "two-factor-index.png"), full_page=True)

    log_out(page)
    log_in_with_password(page)
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    page.screenshot(path=str(out / "totp-sign-in.png"), full_page=True)
    page.locator("input[name=code]").fill("000000" if totp_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("Incorrect code.")).to_be_visible()

    page.locator("input[name=code]").fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(rf"/c/{company.slug}/$"))
    expect(page.get_by_role("heading", name="Acme Coffee")).to_be_visible()
    expect(page.locator("details.usermenu summary")).to_contain_text(EMAIL)


def virtual_authenticator(page: Page) -> Any:
    """A platform authenticator with resident keys and user verification, as a phone or a
    laptop's fingerprint reader would be."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp


def test_passkey_registration_and_passkey_sign_in(chromium_page: Page, output_path: str) -> None:
    company = make_company("Acme Coffee", EMAIL)
    page = chromium_page
    virtual_authenticator(page)
    log_in_with_password(page)

    open_two_factor_page(page)
    page.get_by_role("link", name="Add").click()
    confirm_password(page)
    expect(page.get_by_role("heading", name="Add Security Key")).to_be_visible()
    page.get_by_label("Key name").fill("Laptop")
    page.locator("input[name=passwordless]").check()
    page.locator("#mfa_webauthn_add").click()

    expect(page.get_by_role("heading", name="Recovery Codes")).to_be_visible()
    key = Authenticator.objects.get(type=Authenticator.Type.WEBAUTHN, user__email=EMAIL)
    assert key.wrap().name == "Laptop"
    assert key.wrap().is_passwordless is True

    log_out(page)
    # No email, no password: the passkey alone signs in.
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(re.compile(rf"/c/{company.slug}/$"))
    expect(page.get_by_role("heading", name="Acme Coffee")).to_be_visible()
    expect(page.locator("details.usermenu summary")).to_contain_text(EMAIL)

    open_two_factor_page(page)
    expect(page.get_by_text("You have added 1 security key.")).to_be_visible()
    page.get_by_role("link", name="Manage").click()
    keys = page.get_by_test_id("security-keys")
    expect(keys).to_contain_text("Laptop")
    expect(keys).to_contain_text("Passkey")
    expect(keys).to_contain_text("Last used")
    page.screenshot(path=str(Path(output_path) / "security-keys.png"), full_page=True)
