"""GET /api/v1/surveys/<id>/metrics/: one aggregate query, worked example, periods, outsiders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from responses.models import Response, category_of
from responses.tests.conftest import make_survey

pytestmark = pytest.mark.django_db


def _url(survey) -> str:
    return f"/api/v1/surveys/{survey.public_id}/metrics/"


def _bulk(survey, scores: list[int], when=None) -> None:
    when = when or timezone.now()
    Response.objects.bulk_create(
        Response(
            company=survey.company,
            survey=survey,
            score=s,
            category=category_of(s),
            channel="link",
            browser_key=f"{survey.pk}-{i}-{when.timestamp()}",
            created_at=when,
            updated_at=when,
        )
        for i, s in enumerate(scores)
    )


def test_worked_example_60_25_15(api_viewer, company):
    survey = make_survey(company)
    _bulk(survey, [10] * 30 + [9] * 30 + [8] * 25 + [6] * 10 + [0] * 5)
    with CaptureQueriesContext(connection) as queries:
        body = Client().get(_url(survey), **api_viewer.headers).json()
    assert body["response_count"] == 100
    assert body["nps"] == 45
    assert body["promoters"] == {"count": 60, "percent": 60.0}
    assert body["passives"] == {"count": 25, "percent": 25.0}
    assert body["detractors"] == {"count": 15, "percent": 15.0}
    aggregates = [q for q in queries if '"responses_response"' in q["sql"]]
    assert len(aggregates) == 1, [q["sql"] for q in aggregates]


def test_no_responses_is_null(api_viewer, company):
    survey = make_survey(company)
    body = Client().get(_url(survey), **api_viewer.headers).json()
    assert body["response_count"] == 0
    assert body["nps"] is None
    assert body["promoters"] == {"count": 0, "percent": None}


def test_period_and_other_surveys_excluded(api_viewer, company):
    survey, other = make_survey(company), make_survey(company)
    _bulk(survey, [10, 10], when=timezone.now() - timedelta(days=40))
    _bulk(survey, [0, 9, 8])
    _bulk(other, [0, 0, 0])
    since = (timezone.now() - timedelta(days=30)).isoformat()
    body = Client().get(_url(survey), {"since": since}, **api_viewer.headers).json()
    assert body["response_count"] == 3
    assert body["nps"] == pytest.approx(0.0)
    until = Client().get(_url(survey), {"until": since}, **api_viewer.headers).json()
    assert (until["response_count"], until["nps"]) == (2, 100)


def test_bad_period_400(api_viewer, company):
    survey = make_survey(company)
    response = Client().get(_url(survey), {"since": "soon"}, **api_viewer.headers)
    assert response.status_code == 400
    assert "since" in response.json()["error"]["fields"]


def test_outsider_404(api_outsider, company):
    survey = make_survey(company)
    _bulk(survey, [10])
    response = Client().get(_url(survey), **api_outsider.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
