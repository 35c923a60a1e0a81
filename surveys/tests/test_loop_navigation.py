"""A newcomer can walk the loop from the pages: survey → Send, web link, campaigns, previews."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.urls import reverse

from companies.models import Company
from conftest import Persona
from surveys.models import SurveyStatus
from surveys.services.surveys import survey_create, survey_set_status

pytestmark = pytest.mark.django_db


def _survey(company: Company, status: str = SurveyStatus.DRAFT) -> Any:
    survey = survey_create(company=company, name="After your visit")
    if status != SurveyStatus.DRAFT:
        survey = survey_set_status(company=company, survey=survey, status=status)
    return survey


def _page(persona: Persona, name: str, **kwargs: Any) -> str:
    url = reverse(name, kwargs={"company_slug": persona.company.slug, **kwargs})
    response = persona.client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_active_survey_page_links_to_send_campaigns_responses_and_web_link(
    owner: Persona, settings: Any
) -> None:
    survey = _survey(owner.company, SurveyStatus.ACTIVE)
    body = _page(owner, "surveys:edit", survey_id=survey.public_id)
    send = reverse(
        "surveys:send", kwargs={"company_slug": owner.company.slug, "survey_id": survey.public_id}
    )
    assert f'href="{send}"' in body
    assert reverse("surveys:campaigns", kwargs={"company_slug": owner.company.slug}) in body
    assert f"/responses/?survey={survey.public_id}" in body
    web_link = settings.SITE_URL + reverse("link", kwargs={"public_id": survey.public_id})
    assert web_link in body


@pytest.mark.parametrize("status", [SurveyStatus.DRAFT, SurveyStatus.PAUSED])
def test_a_survey_that_cannot_be_sent_offers_no_send_and_no_web_link(
    owner: Persona, status: str
) -> None:
    survey = _survey(owner.company)
    if status == SurveyStatus.PAUSED:
        survey_set_status(company=owner.company, survey=survey, status=SurveyStatus.ACTIVE)
        survey = survey_set_status(company=owner.company, survey=survey, status=status)
    body = _page(owner, "surveys:edit", survey_id=survey.public_id)
    assert 'data-testid="survey-send"' not in body
    assert f"/l/{survey.public_id}/" not in body


def test_survey_list_offers_send_and_the_web_link_of_active_surveys(owner: Persona) -> None:
    active = _survey(owner.company, SurveyStatus.ACTIVE)
    draft = survey_create(company=owner.company, name="Not yet")
    body = _page(owner, "surveys:list")
    assert f"/l/{active.public_id}/" in body
    assert f"/surveys/{active.public_id}/send/" in body
    assert f"/l/{draft.public_id}/" not in body
    assert f"/surveys/{draft.public_id}/send/" not in body


def test_editor_previews_are_whole_documents_in_their_frames(owner: Persona) -> None:
    """The previews are HTML inside srcdoc: every quote escaped, else the frame is cut short."""
    survey = _survey(owner.company)
    body = _page(owner, "surveys:edit", survey_id=survey.public_id)
    frames = re.findall(r'srcdoc="([^"]*)"', body)
    assert len(frames) == 2
    for frame in frames:
        document = html.unescape(frame)
        assert document.lstrip().lower().startswith("<!doctype html>")
        assert "</html>" in document.lower()


def test_main_nav_and_overview_reach_the_loop(owner: Persona, settings: Any) -> None:
    settings.DEV_OUTBOX_ENABLED = True
    slug = owner.company.slug
    body = _page(owner, "companies:overview")
    for name in ("surveys:list", "surveys:campaigns", "responses:list", "contacts:list"):
        assert f'href="{reverse(name, kwargs={"company_slug": slug})}"' in body, name
    assert reverse("contacts:import", kwargs={"company_slug": slug}) in body
    assert f'href="{reverse("notifications:outbox")}"' in body
    settings.DEV_OUTBOX_ENABLED = False
    assert reverse("notifications:outbox") not in _page(owner, "companies:overview")
