"""Before a campaign goes out: the send page counts the audience and the skipped contacts per
reason with the expansion's own rules, and sends only on a confirmation of what it showed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import Company, new_public_id
from conftest import Persona
from notifications.models import Channel, SuppressionReason
from notifications.services import suppression_add
from surveys.models import Campaign, Contact, Invitation, InvitationStatus, Survey
from surveys.services.campaigns import campaign_create, campaign_expand, campaign_preview
from surveys.services.triggers import invitation_trigger
from surveys.tests.sending_factories import active_survey, contacts

pytestmark = pytest.mark.django_db


def _audience_with_every_reason(company: Company, survey: Survey, *, size: int) -> None:
    """``size`` contacts to invite, plus 1 without an email, 2 suppressed, 1 throttled."""
    people = contacts(company, size + 3)
    Contact.objects.create(company=company, phone="+77011234567")  # no email address
    for person, reason in zip(
        people[:2], (SuppressionReason.UNSUBSCRIBED, SuppressionReason.BOUNCED), strict=True
    ):
        suppression_add(
            company=company, channel=Channel.EMAIL, address=person.email or "", reason=reason
        )
    # Surveyed 10 days ago by another NPS survey: inside the 90-day throttle window.
    other = active_survey(company, name="Earlier survey")
    invitation, outcome = invitation_trigger(company=company, survey=other, email=people[2].email)
    assert outcome == "created"
    assert invitation is not None
    Invitation.objects.for_company(company).filter(pk=invitation.pk).update(
        status=InvitationStatus.SENT, sent_at=timezone.now() - timedelta(days=10)
    )


def _preview(company: Company, survey: Survey, **kwargs: Any) -> Any:
    return campaign_preview(
        company=company,
        survey=survey,
        audience=kwargs.pop("audience", {"all": True}),
        channel=kwargs.pop("channel", "email"),
        campaign_public_id=kwargs.pop("campaign_public_id", new_public_id()),
        **kwargs,
    )


def test_preview_counts_each_skip_reason(company: Company) -> None:
    survey = active_survey(company)
    _audience_with_every_reason(company, survey, size=3)
    preview = _preview(company, survey)
    assert preview.matching == 7
    assert preview.invited == 3
    assert preview.by_channel == {"email": 3}
    assert preview.skipped == {"no_address": 1, "suppressed": 2, "throttled": 1, "sampled_out": 0}
    # Nothing was written.
    assert not Campaign.objects.for_company(company).exists()


def test_preview_counts_what_the_expansion_then_does(company: Company) -> None:
    """Sampled, on each contact's preferred channel: the confirmed campaign (same public id)
    invites exactly the previewed number and skips the previewed ones."""
    survey = active_survey(company, sample_percent=50)
    _audience_with_every_reason(company, survey, size=60)
    Contact.objects.bulk_create(
        Contact(company=company, phone=f"+7701555{n:04d}", properties={"preferred_channel": "sms"})
        for n in range(20)
    )
    public_id = new_public_id()
    preview = _preview(company, survey, channel="preferred", campaign_public_id=public_id)
    assert 0 < preview.skipped["sampled_out"] < preview.matching
    campaign = campaign_create(
        company=company,
        survey=survey,
        audience={"all": True},
        channel="preferred",
        public_id=public_id,
    )
    campaign = campaign_expand(company=company, campaign_id=campaign.pk)
    invitations = Invitation.objects.for_company(company).filter(campaign=campaign)
    assert invitations.count() == preview.invited
    assert {
        channel: invitations.filter(channel=channel).count() for channel in preview.by_channel
    } == preview.by_channel
    assert campaign.targeted == preview.matching
    assert campaign.throttled == preview.skipped["throttled"]
    assert campaign.sampled_out == preview.skipped["sampled_out"]
    assert campaign.suppressed == preview.skipped["suppressed"] + preview.skipped["no_address"]


def test_preview_queries_do_not_grow_with_the_audience(company: Company) -> None:
    survey = active_survey(company)
    counts = []
    for size in (2, 80):
        Contact.objects.for_company(company).delete()
        _audience_with_every_reason(company, survey, size=size)
        with CaptureQueriesContext(connection) as queries:
            preview = _preview(company, survey)
        assert preview.invited == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def _send_url(company: Company, survey: Survey) -> str:
    return reverse(
        "surveys:send", kwargs={"company_slug": company.slug, "survey_id": survey.public_id}
    )


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert match, f"no hidden {name}"
    return match.group(1)


def test_send_page_shows_the_counts_and_sends_only_when_confirmed(
    personas: dict[str, Persona], company: Company
) -> None:
    survey = active_survey(company)
    _audience_with_every_reason(company, survey, size=3)
    manager = personas["manager"].client
    url = _send_url(company, survey)
    form = {"when": "now", "audience": "all", "channel": "email"}

    preview = manager.post(url, form)
    assert preview.status_code == 200
    page = preview.content.decode()
    assert re.search(r'data-preview="invited">3<', page)
    assert re.search(r'data-preview="no_address">1<', page)
    assert re.search(r'data-preview="suppressed">2<', page)
    assert re.search(r'data-preview="throttled">1<', page)
    assert "Send to 3 contacts now" in page
    # A POST without the confirmation sends nothing, however often.
    assert manager.post(url, {**form, "confirm": ""}).status_code == 200
    assert not Campaign.objects.for_company(company).exists()
    # A confirmation without (or with a forged) preview token previews again.
    token, campaign_id = _hidden(page, "preview"), _hidden(page, "campaign_id")
    forged = manager.post(url, {**form, "confirm": "1", "campaign_id": campaign_id})
    assert forged.status_code == 200
    assert "The settings changed since they were counted" in forged.content.decode()
    assert not Campaign.objects.for_company(company).exists()
    # Settings changed after the preview (another channel): previewed again, not sent.
    changed = {
        **form,
        "channel": "sms",
        "confirm": "1",
        "preview": token,
        "campaign_id": campaign_id,
    }
    assert manager.post(url, changed).status_code == 200
    assert not Campaign.objects.for_company(company).exists()

    confirm = {**form, "confirm": "1", "preview": token, "campaign_id": campaign_id}
    sent = manager.post(url, confirm)
    assert sent.status_code == 302
    campaign = Campaign.objects.for_company(company).get()
    assert campaign.public_id == campaign_id
    # The same confirmation again (a double click, a reload): still one campaign.
    again = manager.post(url, confirm)
    assert again.status_code == 302
    assert again["Location"] == sent["Location"]
    assert Campaign.objects.for_company(company).count() == 1


def test_send_page_roles(personas: dict[str, Persona], outsider: Persona, company: Company) -> None:
    survey = active_survey(company)
    contacts(company, 2)
    url = _send_url(company, survey)
    form = {"when": "now", "audience": "all"}
    assert personas["agent"].client.post(url, form).status_code == 403
    assert outsider.client.post(url, form).status_code == 404
    assert not Campaign.objects.for_company(company).exists()


def test_nobody_to_send_to_offers_no_confirmation(
    personas: dict[str, Persona], company: Company
) -> None:
    survey = active_survey(company)
    Contact.objects.create(company=company, phone="+77011234567")
    page = personas["manager"].client.post(
        _send_url(company, survey), {"when": "now", "audience": "all", "channel": "email"}
    )
    body = page.content.decode()
    assert re.search(r'data-preview="no_address">1<', body)
    assert 'data-testid="send-confirm"' not in body
    assert "Nobody would get the survey now." in body
