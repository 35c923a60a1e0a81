"""Binding a key to a survey (its Delighted "project"): the command line and the web page."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from companies.models import ApiKey, Company
from companies.services import api_key_create
from conftest import Persona
from delighted_compat.models import ApiKeySurvey
from surveys.models import Invitation
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def test_create_api_key_with_a_survey_prints_the_key_last_and_binds_it(company: Company) -> None:
    survey = active_survey(company)
    key = run("create_api_key", "--company", company.slug, "--survey", survey.public_id)[-1]
    assert key.startswith("nps_")
    binding = ApiKeySurvey.objects.for_company(company).get()
    assert binding.survey == survey
    assert binding.api_key == ApiKey.objects.for_company(company).get()
    auth = "Basic " + base64.b64encode(key.encode()).decode()
    Client().post(
        "/v1/people",
        data={"email": "a@example.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert Invitation.objects.for_company(company).get().survey == survey


def test_create_api_key_without_a_survey_binds_nothing(company: Company) -> None:
    run("create_api_key", "--company", company.slug)
    assert not ApiKeySurvey.objects.for_company(company).exists()


def test_create_api_key_with_an_unknown_survey_creates_nothing(
    company: Company, other_company: Company
) -> None:
    theirs = active_survey(other_company)
    for survey_id in ("no-such-survey", theirs.public_id):
        with pytest.raises(CommandError) as caught:
            run("create_api_key", "--company", company.slug, "--survey", survey_id)
        assert "Unknown survey" in str(caught.value)
        assert "\n" not in str(caught.value)
    assert not ApiKey.objects.for_company(company).exists()


def test_the_web_page_binds_a_key_to_a_survey_and_back(company: Company, owner: Persona) -> None:
    survey = active_survey(company, name="Checkout survey")
    issued = api_key_create(company=company, name="Zapier")
    url = reverse("delighted_api_keys", kwargs={"company_slug": company.slug})
    page = owner.client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "/v1/" in html
    assert "Checkout survey" in html
    assert "Zapier" in html
    keys_page = owner.client.get(reverse("companies:api_keys", args=[company.slug]))
    assert url in keys_page.content.decode()

    response = owner.client.post(url, {"key": issued.api_key.public_id, "survey": survey.public_id})
    assert response.status_code == 302
    assert ApiKeySurvey.objects.for_company(company).get().survey == survey
    owner.client.post(url, {"key": issued.api_key.public_id, "survey": ""})
    assert not ApiKeySurvey.objects.for_company(company).exists()


def test_the_web_page_refuses_another_companys_key_or_survey(
    company: Company, other_company: Company, owner: Persona
) -> None:
    ours = api_key_create(company=company, name="ours")
    theirs_key = api_key_create(company=other_company, name="theirs")
    theirs_survey = active_survey(other_company)
    url = reverse("delighted_api_keys", kwargs={"company_slug": company.slug})
    response = owner.client.post(url, {"key": theirs_key.api_key.public_id, "survey": ""})
    assert response.status_code == 400
    response = owner.client.post(
        url, {"key": ours.api_key.public_id, "survey": theirs_survey.public_id}
    )
    assert response.status_code == 400
    assert not ApiKeySurvey.objects.unscoped(reason="test: nothing anywhere").exists()


def test_keys_fit_a_basic_header_from_every_delighted_client(company: Company) -> None:
    """The Ruby gem base64-wraps ``KEY:`` after 45 bytes: a longer key breaks its header."""
    for _ in range(20):
        key = api_key_create(company=company, name="k").key
        assert len(key) <= 44
        assert key.isascii()
        # Ruby's pack("m") starts a new line after every 45 input bytes.
        assert len(f"{key}:".encode()) <= 45
