"""/c/<slug>/responses/export.csv|xlsx: filters, anonymity, formula escaping, streaming."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from companies.models import Company
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey
from surveys.models import Survey, SurveyKind

pytestmark = pytest.mark.django_db


def _answer(survey: Survey, email: str, score: int, comment: str = "", **contact: Any) -> None:
    invitation, _token = make_invitation(survey, make_contact(survey.company, email, **contact))
    response_record(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        channel="email",
        language="en",
    )


def _url(company: Company, fmt: str) -> str:
    return reverse(f"responses:export-{fmt}", kwargs={"company_slug": company.slug})


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_applies_the_filters_and_escapes_formulas(
    personas: dict[str, Any], company: Company
) -> None:
    customers = make_survey(company, name="Customers")
    partners = make_survey(company, name="Partners")
    _answer(customers, "ann@x.test", 3, '=HYPERLINK("http://evil")', properties={"plan": "pro"})
    _answer(customers, "bob@x.test", 10, "Great")
    _answer(partners, "cid@x.test", 2, "-2 stars")
    response = personas["viewer"].client.get(
        _url(company, "csv"), {"survey": customers.public_id, "category": "detractor"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    (row,) = _csv(response)
    assert (row["Survey"], row["Score"], row["Category"], row["Email"]) == (
        "Customers",
        "3",
        "detractor",
        "ann@x.test",
    )
    assert row["Comment"] == '\'=HYPERLINK("http://evil")'  # not a formula in Excel
    assert row["Contact properties"] == '{"plan": "pro"}'
    everything = _csv(personas["viewer"].client.get(_url(company, "csv")))
    assert [r["Comment"] for r in everything] == ["'-2 stars", "Great", row["Comment"]]


def test_anonymous_survey_exports_carry_no_identity(
    personas: dict[str, Any], company: Company
) -> None:
    staff = make_survey(company, name="Staff", kind=SurveyKind.ENPS, anonymous=True)
    _answer(staff, "eve@corp.test", 4, "Too many meetings", name="Eve", properties={"team": "x"})
    (row,) = _csv(personas["owner"].client.get(_url(company, "csv")))
    assert row["Comment"] == "Too many meetings"
    assert (row["Email"], row["Name"], row["Contact properties"]) == ("", "", "")


def test_xlsx_export_opens_in_a_spreadsheet(personas: dict[str, Any], company: Company) -> None:
    survey = make_survey(company, name="Customers")
    _answer(survey, "ann@x.test", 9, "Привет, отлично")
    response = personas["viewer"].client.get(_url(company, "xlsx"))
    assert response.status_code == 200
    assert response.streaming
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("Response id", "Answered at", "Updated at", "Survey", "Score")
    assert rows[1][3:7] == ("Customers", 9, "promoter", "Привет, отлично")


def test_exports_cost_the_same_queries_for_any_size(
    personas: dict[str, Any], company: Company
) -> None:
    survey = make_survey(company, name="Customers")
    client = personas["viewer"].client

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            _csv(client.get(_url(company, "csv")))
        return len(captured)

    _answer(survey, "p0@x.test", 5)
    small = queries()
    for n in range(1, 30):
        _answer(survey, f"p{n}@x.test", n % 11)
    assert queries() == small


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_outsiders_get_nothing(outsider: Any, company: Company, fmt: str) -> None:
    make_survey(company)
    assert outsider.client.get(_url(company, fmt)).status_code == 404
