"""One survey for a company moving from Delighted: the importer's answers and the answers of
its API at ``/v1/`` land together, whichever came first."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from companies.models import Company
from companies.services import api_key_create
from conftest import Persona
from delighted_compat.api.services import default_survey_ensure
from delighted_compat.models import DefaultApiSurvey, DelightedImport, ExportKind
from delighted_compat.tests.test_api import call
from responses.models import Response
from surveys.models import Survey, SurveyStatus
from surveys.services.surveys import survey_create, survey_set_status

pytestmark = pytest.mark.django_db

RESPONSES = Path(__file__).parent / "data" / "delighted-responses.csv"
IMPORTED = 15  # the valid answers of the sample export


def _import(company: Company) -> None:
    call_command(
        "import_delighted", "--company", company.slug, str(RESPONSES), stdout=io.StringIO()
    )


def _answer_through_v1(key: str) -> str:
    person = call("POST", "/v1/people", key, {"email": "new@example.com", "send": False}).json()
    response = call("POST", "/v1/survey_responses", key, {"person": person["id"], "score": 10})
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def _listed_through_v1(key: str) -> int:
    count, page = 0, 1
    while rows := call("GET", f"/v1/survey_responses?per_page=100&page={page}", key).json():
        count += len(rows)
        page += 1
    return count


def test_import_first_then_the_api_uses_the_imported_survey(company: Company) -> None:
    _import(company)
    (survey,) = Survey.objects.for_company(company)
    assert survey.name == "Delighted"
    assert survey.status == SurveyStatus.ACTIVE  # /v1/ schedules surveys in it
    key = api_key_create(company=company, name="delighted").key
    assert _listed_through_v1(key) == IMPORTED  # the history, through the API
    new_id = _answer_through_v1(key)
    assert Response.objects.for_company(company).get(public_id=new_id).survey_id == survey.pk
    assert _listed_through_v1(key) == IMPORTED + 1
    metrics = call("GET", "/v1/metrics?since=0", key).json()
    assert metrics["response_count"] == IMPORTED + 1
    assert Survey.objects.for_company(company).count() == 1


def test_the_api_first_then_the_import_lands_in_the_apis_survey(company: Company) -> None:
    key = api_key_create(company=company, name="delighted").key
    _answer_through_v1(key)
    (survey,) = Survey.objects.for_company(company)
    _import(company)
    assert Survey.objects.for_company(company).count() == 1
    assert set(Response.objects.for_company(company).values_list("survey", flat=True)) == {
        survey.pk
    }
    assert DelightedImport.objects.for_company(company).get().survey_id == survey.pk
    assert _listed_through_v1(key) == IMPORTED + 1


def test_an_earlier_imports_draft_survey_is_taken_up_and_an_archived_one_is_not(
    company: Company, other_company: Company
) -> None:
    """Imports made before there was one default: their survey (a draft) becomes it."""
    for owner, status in ((company, SurveyStatus.DRAFT), (other_company, SurveyStatus.ARCHIVED)):
        survey = survey_create(company=owner, name="Delighted")
        if status == SurveyStatus.ARCHIVED:
            survey_set_status(company=owner, survey=survey, status=status)
        DelightedImport.objects.create(
            company=owner, batch="b", kind=ExportKind.RESPONSES, survey=survey, file_name="r.csv"
        )
    taken = default_survey_ensure(company=company)
    assert taken.name == "Delighted"
    assert taken.status == SurveyStatus.ACTIVE
    assert Survey.objects.for_company(company).count() == 1
    fresh = default_survey_ensure(company=other_company)
    assert fresh.status == SurveyStatus.ACTIVE
    assert Survey.objects.for_company(other_company).count() == 2
    assert DefaultApiSurvey.objects.for_company(other_company).get().survey_id == fresh.pk


def test_the_import_page_offers_the_apis_survey_first(
    personas: dict[str, Persona], company: Company
) -> None:
    client = personas["manager"].client
    upload = SimpleUploadedFile("r.csv", RESPONSES.read_bytes(), content_type="text/csv")
    url = reverse("delighted_import:upload", kwargs={"company_slug": company.slug})
    batch_url = client.post(url, {"exports": [upload]})["Location"]
    (form,) = client.get(batch_url).context["forms"]
    assert form["survey"].value() is None  # none yet: the empty choice creates it
    survey = default_survey_ensure(company=company)
    survey_create(company=company, name="Another survey")
    page = client.get(batch_url)
    (form,) = page.context["forms"]
    assert form["survey"].value() == survey.public_id
    assert "Delighted&#x27;s API" in page.content.decode()
