"""An admin keeps a receiver written for Delighted: a new webhook endpoint with the Delighted
payload format and the receiver's old key pasted, then the test event, verified the way
Delighted's docs say."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from companies.models import Company
from notifications.tests.webhooks_fake import LoopbackReceiver
from tests.browser.conftest import chromium_page, log_in_as_demo_owner  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OLD_DELIGHTED_KEY = "mpvFJrBgUqVGKRbYCAJ1fNnS2rdDLVsd"


def test_a_delighted_format_endpoint_from_the_browser(
    chromium_page: Page,  # noqa: F811
    settings,
    tmp_path: Path,
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    page = chromium_page
    log_in_as_demo_owner(page, settings, tmp_path)
    company = Company.objects.get()
    with LoopbackReceiver() as receiver:
        page.goto(f"/c/{company.slug}/webhooks/new/")
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Delighted", exact=True).check()
        page.get_by_label("A response arrived").check()
        page.get_by_label("Signing key (Delighted format only)").fill(OLD_DELIGHTED_KEY)
        page.get_by_role("button", name="Create endpoint").click()

        expect(page.get_by_test_id("new-secret")).to_contain_text("X-Delighted-Webhook-Signature")
        expect(page.locator("#new-secret-value")).to_have_value(OLD_DELIGHTED_KEY)
        expect(page.get_by_test_id("payload-format")).to_contain_text("Delighted")
        page.get_by_test_id("send-test").click()
        expect(page.get_by_test_id("delivery-log")).to_contain_text("Delivered")

    [request] = receiver.requests
    algo, _, digest = request.headers["x-delighted-webhook-signature"].partition("=")
    expected = hmac.new(OLD_DELIGHTED_KEY.encode(), request.body, hashlib.sha256).hexdigest()
    assert algo == "sha256"
    assert hmac.compare_digest(expected, digest)
    assert json.loads(request.body)["event_type"] == "ping"
