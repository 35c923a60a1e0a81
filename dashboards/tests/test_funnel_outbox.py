"""The development outbox counts as delivered: the funnel of a `make run` send said
"Delivered 4 of 7" where the outbox had taken all 7 (only the answered ones were inferred)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from companies.models import Company
from dashboards.funnel import funnel_for
from notifications.models import Delivery, DeliveryStatus
from surveys.models import Invitation
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.invitations import invitation_mark_answered
from surveys.services.send import invitations_send
from surveys.tests.sending_factories import active_survey, contacts

pytestmark = pytest.mark.django_db


@override_settings(
    EMAIL_PROVIDER="outbox", EMAIL_BACKEND="notifications.backends.OutboxEmailBackend"
)
def test_what_the_outbox_took_is_delivered(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    survey = active_survey(company)
    contacts(company, 7)
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    with django_capture_on_commit_callbacks(execute=True):
        campaign_expand(company=company, campaign_id=campaign.pk)
    invitations = Invitation.objects.for_company(company)
    with django_capture_on_commit_callbacks(execute=True):
        invitations_send(
            company=company, invitation_ids=list(invitations.values_list("pk", flat=True))
        )
    for invitation in invitations.order_by("pk")[:4]:
        invitation_mark_answered(invitation=invitation)
    assert set(Delivery.objects.for_company(company).values_list("status", flat=True)) == {
        DeliveryStatus.SENT
    }
    today = timezone.localdate()
    (email,) = funnel_for(company=company, since=today - timedelta(days=1))
    assert (email["sent"], email["delivered"], email["answered"]) == (7, 7, 4)
