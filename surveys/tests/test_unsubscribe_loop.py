"""One-click unsubscribe from a sent survey email, then nothing more reaches that address.

The whole path: the email's own ``List-Unsubscribe`` URL (as stored by the outbox backend),
an RFC 8058 POST with no cookies or CSRF token, then both ways of sending refuse the address.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from companies.models import Company
from notifications.models import OutboxMessage, Suppression
from surveys.models import Invitation, InvitationStatus
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.dispatch import invitations_dispatch_due
from surveys.services.send import invitations_send
from surveys.services.triggers import invitation_trigger
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db

ADDRESS = "leaving@example.com"


@pytest.fixture(autouse=True)
def _outbox(settings: Any) -> None:
    settings.EMAIL_PROVIDER = "outbox"
    settings.EMAIL_BACKEND = "notifications.backends.OutboxEmailBackend"


def _send_due(company: Company) -> None:
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    ids = Invitation.objects.for_company(company).values_list("pk", flat=True)
    invitations_send(company=company, invitation_ids=list(ids))


def test_one_click_unsubscribe_then_sends_to_that_address_are_suppressed(
    company: Company,
) -> None:
    survey = active_survey(company)
    invitation, outcome = invitation_trigger(company=company, survey=survey, email=ADDRESS)
    assert outcome == "created"
    assert invitation is not None
    _send_due(company)
    [message] = OutboxMessage.objects.all()
    header = message.headers["List-Unsubscribe"]
    match = re.fullmatch(r"<(https?://[^>]+)>", header)
    assert match, header

    response = Client(enforce_csrf_checks=True).post(
        urlsplit(match.group(1)).path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Suppression.objects.for_company(company).filter(address=ADDRESS).exists()

    # The transactional trigger refuses it, even forced past the throttle.
    assert invitation_trigger(company=company, survey=survey, email=ADDRESS, force=True) == (
        None,
        "suppressed",
    )
    # A campaign counts it as suppressed and sends nothing.
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    campaign = campaign_expand(company=company, campaign_id=campaign.pk)
    assert campaign.suppressed == 1
    _send_due(company)
    assert OutboxMessage.objects.count() == 1
    assert (
        not Invitation.objects.for_company(company)
        .filter(campaign=campaign)
        .exclude(status=InvitationStatus.SUPPRESSED)
    )
