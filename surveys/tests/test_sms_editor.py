"""The survey editor shows each language's SMS invitation with its encoding and segments."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from companies.models import Company, Role
from conftest import Persona
from surveys.services.surveys import survey_update
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db


def _sms_section(page: str) -> str:
    match = re.search(r'data-testid="sms-preview">(.*?)</section>', page, re.S)
    assert match is not None
    return match.group(1)


def test_editor_shows_encoding_and_segments_per_language(
    personas: dict[str, Persona], company: Company
) -> None:
    survey = active_survey(company)
    url = reverse(
        "surveys:edit", kwargs={"company_slug": company.slug, "survey_id": survey.public_id}
    )
    section = _sms_section(personas[Role.MANAGER].client.get(url).content.decode())
    english, russian, kazakh = re.findall(r"<p><strong>(.*?)</p>", section, re.S)
    assert "GSM-7 · 2 segments" in english  # the default English text fits two GSM-7 parts
    assert "UCS-2" in russian
    assert "segments" in russian
    assert "UCS-2" in kazakh
    assert "forced to UCS-2" not in section
    assert "Reply with a number from 0 to 10" in section

    # A curly apostrophe is replaced by a straight one (the text stays GSM-7)...
    survey_update(
        company=company, survey=survey, texts={"en": {"question": "How\u2019s {company}?"}}
    )
    section = _sms_section(personas[Role.MANAGER].client.get(url).content.decode())
    assert "How&#x27;s" in section
    # ...but a character with no GSM-7 stand-in is named as the cause of UCS-2.
    survey_update(company=company, survey=survey, texts={"en": {"question": "Rate {company} ★"}})
    section = _sms_section(personas[Role.MANAGER].client.get(url).content.decode())
    english = re.findall(r"<p><strong>(.*?)</p>", section, re.S)[0]
    assert "UCS-2" in english
    assert "forced to UCS-2 by <code>★</code>" in english
