"""A campaign's progress (live card on the campaign page) and its results page: response
rate, NPS with its 95% interval, the category split and the recipients with their state."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from companies.models import Company
from conftest import Persona
from dashboards import campaign_views
from notifications.models import Delivery, DeliveryStatus
from responses.services import response_record
from surveys.models import Campaign, CampaignStatus, Invitation, InvitationStatus, SurveyKind
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.tests.sending_factories import active_survey, contacts

pytestmark = pytest.mark.django_db

# The answers of the known set: P = 3, D = 2, N = 6.
SCORES = (10, 9, 9, 8, 3, 0)


def _campaign(company: Company, size: int, *, anonymous: bool = False) -> Campaign:
    # eNPS surveys are anonymous, always.
    survey = active_survey(company, kind=SurveyKind.ENPS if anonymous else SurveyKind.NPS)
    assert survey.anonymous == anonymous
    contacts(company, size)
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    return campaign_expand(company=company, campaign_id=campaign.pk)


def _invitations(company: Company, campaign: Campaign) -> list[Invitation]:
    return list(Invitation.objects.for_company(company).filter(campaign=campaign).order_by("id"))


def _send(company: Company, invitations: list[Invitation]) -> None:
    Invitation.objects.for_company(company).filter(pk__in=[i.pk for i in invitations]).update(
        status=InvitationStatus.SENT, sent_at=timezone.now()
    )


def _answer(invitations: list[Invitation], scores: tuple[int, ...]) -> None:
    for invitation, score in zip(invitations, scores, strict=False):
        invitation.refresh_from_db()
        response_record(
            invitation=invitation,
            survey=invitation.survey,
            score=score,
            channel="email",
            language="en",
        )


def _values(html: str, attribute: str) -> dict[str, str]:
    return {
        name: value.strip()
        for name, value in re.findall(rf'data-{attribute}="(\w+)">([^<]*)<', html)
    }


def _progress_url(company: Company, campaign: Campaign) -> str:
    return reverse(
        "surveys:campaign-progress",
        kwargs={"company_slug": company.slug, "campaign_id": campaign.public_id},
    )


def _results_url(company: Company, campaign: Campaign) -> str:
    return reverse(
        "dashboards:campaign-results",
        kwargs={"company_slug": company.slug, "campaign_id": campaign.public_id},
    )


def test_progress_card_counts_and_polls_only_while_running(
    viewer: Persona, company: Company
) -> None:
    campaign = _campaign(company, 10)
    assert campaign.status == CampaignStatus.SENDING
    invitations = _invitations(company, campaign)
    _send(company, invitations[:8])
    Invitation.objects.for_company(company).filter(pk__in=[i.pk for i in invitations[:5]]).update(
        delivered_at=timezone.now()
    )
    _answer(invitations[:2], (9, 4))

    card = viewer.client.get(_progress_url(company, campaign))
    assert card.status_code == 200
    html = card.content.decode()
    assert _values(html, "progress") == {
        "sent": "8",
        "delivered": "5",
        "answered": "2",
        "response_rate": "25.0%",
    }
    assert 'data-running="true"' in html
    assert f'hx-get="{_progress_url(company, campaign)}"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "<html" not in html  # the card alone, for htmx to swap in
    # The campaign page starts with the same card.
    page = viewer.client.get(
        reverse(
            "surveys:campaign",
            kwargs={"company_slug": company.slug, "campaign_id": campaign.public_id},
        )
    ).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert _results_url(company, campaign) in page

    # Done: the card comes back without polling, so the page stops asking.
    Campaign.objects.for_company(company).filter(pk=campaign.pk).update(status=CampaignStatus.DONE)
    html = viewer.client.get(_progress_url(company, campaign)).content.decode()
    assert 'data-running="false"' in html
    assert "hx-trigger" not in html
    assert "hx-get" not in html


def test_a_campaign_due_later_does_not_poll(viewer: Persona, company: Company) -> None:
    survey = active_survey(company)
    campaign = campaign_create(
        company=company,
        survey=survey,
        audience={"all": True},
        scheduled_for=timezone.now() + timedelta(days=2),
    )
    html = viewer.client.get(_progress_url(company, campaign)).content.decode()
    assert "hx-trigger" not in html
    assert _values(html, "progress")["response_rate"] == "—"


def test_results_page_figures_for_a_known_set_of_answers(viewer: Persona, company: Company) -> None:
    campaign = _campaign(company, 10)
    invitations = _invitations(company, campaign)
    _send(company, invitations[:8])
    _answer(invitations, SCORES)
    # One bounced and one failed among the rest.
    bounced = Delivery.objects.create(
        company=company,
        channel="email",
        to=invitations[6].contact.email or "",
        status=DeliveryStatus.BOUNCED,
    )
    Invitation.objects.for_company(company).filter(pk=invitations[6].pk).update(delivery=bounced)
    Invitation.objects.for_company(company).filter(pk=invitations[9].pk).update(
        status=InvitationStatus.FAILED, failed_reason="Provider refused"
    )

    response = viewer.client.get(_results_url(company, campaign))
    assert response.status_code == 200
    html = response.content.decode()
    figures = {**_values(html, "testid"), **_values(html, "result")}
    # NPS = 100·(3 − 2)/6 = 16.7; adjusted Wald: N′ = 9, p = 3.75/9, d = 2.75/9,
    # var = p + d − (p − d)² = 0.70988, se = √(var/9) = 0.28085, ±1.959964·se → −43.9 … 66.2.
    assert figures["nps"] == "17"
    assert figures["ci95"] == "95% interval -44 to 66"
    assert figures["n"] == "6"
    assert figures["promoters"] == "3 · 50.0%"
    assert figures["passives"] == "1 · 16.7%"
    assert figures["detractors"] == "2 · 33.3%"
    assert figures["response_rate"] == "75.0%"  # 6 answered of 8 sent
    assert 'data-testid="low-sample"' in html
    # The menu marks Campaigns, where the page is reached from, not Dashboard.
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', html)
    assert current == [reverse("surveys:campaigns", kwargs={"company_slug": company.slug})]
    states = re.findall(r'data-state="(\w+)"', html)
    assert states == ["answered"] * 6 + ["bounced", "sent", "queued", "failed"]
    scores = re.findall(r"<td data-score>([^<]*)</td>", html)
    assert scores == [str(s) for s in SCORES] + ["—"] * 4


def test_results_page_hides_scores_of_an_anonymous_survey(
    viewer: Persona, company: Company
) -> None:
    campaign = _campaign(company, 2, anonymous=True)
    invitations = _invitations(company, campaign)
    _send(company, invitations)
    _answer(invitations, (10,))
    html = viewer.client.get(_results_url(company, campaign)).content.decode()
    assert _values(html, "testid")["nps"] == "100"
    assert re.findall(r'data-state="(\w+)"', html) == ["answered", "sent"]
    assert re.findall(r"<td data-score>([^<]*)</td>", html) == ["—", "—"]


def test_recipients_are_paginated_with_constant_queries(
    viewer: Persona, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaign_views, "RECIPIENTS_PER_PAGE", 5)
    campaign = _campaign(company, 12)
    invitations = _invitations(company, campaign)
    _send(company, invitations)
    _answer(invitations, (9, 8, 7, 6, 5, 4, 3))
    url = _results_url(company, campaign)
    queries = []
    for page in (1, 2, 3):
        with CaptureQueriesContext(connection) as captured:
            html = viewer.client.get(url, {"page": page}).content.decode()
        queries.append(len(captured))
        rows = len(re.findall(r"data-recipient=", html))
        assert rows == (5 if page < 3 else 2)
    assert queries[0] == queries[1] == queries[2], queries
    assert "Page 3 of 3" in html


def test_results_page_roles(
    personas: dict[str, Persona], outsider: Persona, company: Company
) -> None:
    campaign = _campaign(company, 1)
    url = _results_url(company, campaign)
    assert personas["viewer"].client.get(url).status_code == 200
    assert outsider.client.get(url).status_code == 404
    assert outsider.client.get(_progress_url(company, campaign)).status_code == 404
