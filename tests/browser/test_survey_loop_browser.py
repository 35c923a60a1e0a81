"""The survey loop in a real browser: send, open the email in the outbox, click 9, answer.

The mail goes through the real pipeline (campaign → dispatcher → send → post office) into the
development outbox, exactly as in ``make run``; the browser then does what a respondent does,
and the company's systems find the answer through the API.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from companies.models import Company
from companies.services import api_key_create
from notifications.models import OutboxMessage
from responses.models import Response
from surveys.models import Invitation, InvitationStatus
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.contacts import contact_upsert
from surveys.services.dispatch import invitations_dispatch_due
from surveys.services.send import invitations_send
from surveys.services.surveys import survey_create, survey_set_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COMMENT = "The staff remembered my name."


@pytest.fixture
def outbox_mail(settings: Any, live_server) -> None:
    """Mail into the development outbox, links pointing at the live server, /dev/outbox/ on."""
    settings.EMAIL_PROVIDER = "outbox"
    settings.EMAIL_BACKEND = "notifications.backends.OutboxEmailBackend"
    settings.DEV_OUTBOX_ENABLED = True
    settings.SITE_URL = live_server.url


def _send_survey(company: Company) -> Invitation:
    """An active survey, one contact, a campaign to everyone, sent now (inline)."""
    survey = survey_create(company=company, name="After your visit")
    survey_set_status(company=company, survey=survey, status="active")
    contact_upsert(company=company, email="guest@example.com", name="Guest")
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    campaign_expand(company=company, campaign_id=campaign.pk)
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    ids = list(Invitation.objects.for_company(company).values_list("pk", flat=True))
    invitations_send(company=company, invitation_ids=ids)
    [invitation] = Invitation.objects.for_company(company).filter(campaign=campaign)
    assert invitation.status == InvitationStatus.SENT
    return invitation


def _poll(read: Any, timeout: float = 10.0) -> Any:
    """The first truthy value of ``read()`` (the live server writes from its own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"nothing after {timeout}s")


def _screenshot(page: Page, output_path: str, name: str) -> None:
    path = Path(output_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
    assert len(data) > 5_000, f"{path} is only {len(data)} bytes: a blank page?"


def test_open_the_email_click_9_comment_and_find_it_in_the_api(
    chromium_page: Page, live_server, outbox_mail: None, company: Company, output_path: str
):
    invitation = _send_survey(company)
    [message] = OutboxMessage.objects.all()
    assert message.to == ["guest@example.com"]

    page = chromium_page
    page.goto("/dev/outbox/")
    card = page.get_by_test_id("outbox-message")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("guest@example.com")
    _screenshot(page, output_path, "1-outbox.png")

    # The email's HTML in the outbox's frame; its "9" opens the answer page in a new tab, as
    # from a mail client (an absolute link to the live server).
    nine = card.frame_locator("iframe").get_by_role("link", name="9", exact=True)
    expect(nine).to_have_count(1)
    nine.scroll_into_view_if_needed()
    with page.context.expect_page() as opened:
        nine.click()
    page = opened.value
    page.wait_for_load_state()

    # The score page: 9 selected, and recorded by the page itself, with no other click.
    page.wait_for_url(re.compile(r"/r/[^/]+/9/$"))
    expect(page.locator("#score-9")).to_be_checked()
    expect(page.get_by_role("status")).to_have_text("Thank you! Your score is saved.")

    def recorded() -> Response | None:
        return Response.objects.for_company(company).filter(invitation=invitation).first()

    response = _poll(recorded)
    assert (response.score, response.comment) == (9, "")
    _screenshot(page, output_path, "3-score-page.png")

    page.locator("#id_comment").fill(COMMENT)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/r/[^/]+/thanks/(\?.*)?$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    thanks = page.get_by_role("heading", level=1).inner_text()
    assert "thank" in thanks.lower()
    _screenshot(page, output_path, "4-thanks.png")

    # One response, now with the comment; the invitation knows it was answered.
    [response] = Response.objects.for_company(company).filter(survey=invitation.survey)
    assert (response.score, response.comment, response.category) == (9, COMMENT, "promoter")
    invitation.refresh_from_db()
    assert invitation.answered_at is not None

    # The company's systems see it through the API, over real HTTP to the live server.
    key = api_key_create(company=company, name="crm").key
    request = Request(  # noqa: S310 (the local live server)
        f"{live_server.url}/api/v1/responses/?survey={invitation.survey.public_id}",
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
    )
    with urlopen(request, timeout=10) as http:  # noqa: S310 (the local live server)
        assert http.status == 200
        body = json.load(http)
    results = body["results"]
    assert [(r["score"], r["comment"]) for r in results] == [(9, COMMENT)]
