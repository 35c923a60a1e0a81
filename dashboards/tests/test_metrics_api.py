"""GET /api/v1/metrics/ and /api/v1/surveys/<id>/metrics/: figures, periods, trend, segments,
outsiders, roles, a query count that stays flat as data grows, the OpenAPI schema."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from companies.models import Role
from companies.services import api_key_create
from dashboards.services import rollup_fold
from responses.models import Response, category_of
from responses.tests.conftest import make_survey

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 6, 15, 12, tzinfo=UTC)


def _url(survey=None) -> str:
    return f"/api/v1/surveys/{survey.public_id}/metrics/" if survey else "/api/v1/metrics/"


def _get(persona, survey=None, **params: Any):
    return Client().get(_url(survey), params, **persona.headers)


_keys = itertools.count()


def _bulk(survey, scores: list[int], when=None, *, channel="link", language="en", props=None):
    when = when or timezone.now()
    Response.objects.bulk_create(
        Response(
            company=survey.company,
            survey=survey,
            score=s,
            category=category_of(s),
            channel=channel,
            language=language,
            contact_properties=props or {},
            browser_key=f"b{next(_keys)}",
            created_at=when,
            updated_at=when,
        )
        for s in scores
    )


def _day(days_ago: int) -> str:
    return (timezone.now() - timedelta(days=days_ago)).date().isoformat()


# --- Figures ----------------------------------------------------------------------------------


def test_worked_example_60_25_15_from_the_rollup(api_viewer, company):
    survey = make_survey(company)
    _bulk(survey, [10] * 30 + [9] * 30 + [8] * 25 + [6] * 10 + [0] * 5)
    rollup_fold()
    with CaptureQueriesContext(connection) as queries:
        response = _get(api_viewer, survey)
    body = response.json()
    assert response.status_code == 200, body
    assert body["survey"] == survey.public_id
    assert body["response_count"] == 100
    assert body["nps"] == 45
    assert body["promoters"] == {"count": 60, "percent": 60.0}
    assert body["passives"] == {"count": 25, "percent": 25.0}
    assert body["detractors"] == {"count": 15, "percent": 15.0}
    assert body["ci95"]["low"] < 45 < body["ci95"]["high"]
    assert body["low_sample"] is False
    assert body["band"] == "favourable"
    assert body["previous"] is None  # no since: all time, nothing before it
    assert body["trend"] is None
    assert body["segments"] is None
    # The figures come from the rollup, not from a scan of the responses.
    assert not [q for q in queries if '"responses_response"' in q["sql"]]


def test_no_responses_is_null(api_viewer, company):
    survey = make_survey(company)
    body = _get(api_viewer, survey).json()
    assert body["response_count"] == 0
    assert body["nps"] is None
    assert body["ci95"] is None
    assert body["band"] is None
    assert body["low_sample"] is True
    assert body["promoters"] == {"count": 0, "percent": None}


def test_period_and_other_surveys_excluded(api_viewer, company):
    survey, other = make_survey(company), make_survey(company)
    _bulk(survey, [10, 10], when=timezone.now() - timedelta(days=40))
    _bulk(survey, [0, 9, 8])
    _bulk(other, [0, 0, 0])
    body = _get(api_viewer, survey, since=_day(30)).json()
    assert body["response_count"] == 3
    assert body["nps"] == pytest.approx(0.0)
    assert body["since"] == _day(30)
    assert body["until"] == _day(0)
    # The first version took date-times: still accepted, as their day in the company's zone.
    since = (timezone.now() - timedelta(days=30)).isoformat()
    assert _get(api_viewer, survey, since=since).json()["response_count"] == 3


def test_company_wide_sums_surveys_and_keeps_other_companies_out(
    api_viewer, company, other_company
):
    _bulk(make_survey(company), [10, 10, 0])
    _bulk(make_survey(company), [9, 7])
    _bulk(make_survey(other_company), [0] * 50)
    body = _get(api_viewer).json()
    assert body["response_count"] == 5
    assert body["nps"] == pytest.approx(100 * (3 - 1) / 5)
    assert "survey" not in body


def test_previous_period_and_significance(api_viewer, company):
    survey = make_survey(company)
    now = timezone.now()
    _bulk(survey, [10] * 60 + [8] * 25 + [0] * 15, when=now - timedelta(days=3))
    _bulk(survey, [10] * 20 + [8] * 20 + [0] * 60, when=now - timedelta(days=13))
    body = _get(api_viewer, survey, since=_day(9), until=_day(0)).json()
    assert body["nps"] == 45
    previous = body["previous"]
    assert previous["since"] == _day(19)
    assert previous["until"] == _day(10)
    assert previous["response_count"] == 100
    assert previous["nps"] == -40
    assert previous["difference"] == 85
    assert previous["p_value"] < 0.001
    assert previous["significant"] is True
    assert previous["z"] > 3
    assert 0 < previous["difference_ci95"]["low"] < 85 < previous["difference_ci95"]["high"]
    # Too few answers for the same change to count: shown, but not as up or down.
    small = make_survey(company)
    _bulk(small, [10, 10, 0], when=now - timedelta(days=3))
    _bulk(small, [0, 0, 10], when=now - timedelta(days=13))
    previous = _get(api_viewer, small, since=_day(9), until=_day(0)).json()["previous"]
    assert previous["difference"] == pytest.approx(200 / 3)
    assert previous["significant"] is False
    # No answers before: nothing to compare.
    fresh = make_survey(company)
    _bulk(fresh, [10], when=now - timedelta(days=3))
    previous = _get(api_viewer, fresh, since=_day(9), until=_day(0)).json()["previous"]
    assert previous["response_count"] == 0
    assert previous["difference"] is None
    assert previous["significant"] is False


def test_trend_by_week_fills_empty_weeks(api_viewer, company):
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    survey = make_survey(company)
    # Monday 2026-06-01 and Thursday 2026-06-18 (local); the week of June 8 has nothing.
    _bulk(survey, [10, 0], when=datetime(2026, 6, 1, 12, tzinfo=UTC))
    _bulk(survey, [9], when=datetime(2026, 6, 18, 12, tzinfo=UTC))
    rollup_fold()
    _bulk(survey, [10], when=datetime(2026, 6, 18, 13, tzinfo=UTC))  # pending, still counted
    body = _get(api_viewer, survey, since="2026-06-03", until="2026-06-20", trend="week").json()
    assert [(p["start"], p["end"], p["response_count"]) for p in body["trend"]] == [
        ("2026-06-03", "2026-06-07", 0),  # clipped to the period: the June 1 answers are out
        ("2026-06-08", "2026-06-14", 0),
        ("2026-06-15", "2026-06-20", 2),
    ]
    assert body["trend"][0]["nps"] is None
    assert body["trend"][2]["nps"] == 100
    assert body["trend"][2]["low_sample"] is True


def test_trend_by_month_and_day(api_viewer, company):
    survey = make_survey(company)
    _bulk(survey, [10], when=datetime(2026, 1, 31, 23, tzinfo=UTC))
    _bulk(survey, [0, 0], when=datetime(2026, 2, 1, 0, tzinfo=UTC))
    months = _get(api_viewer, survey, since="2026-01-01", until="2026-02-28", trend="month")
    assert [(p["start"], p["response_count"]) for p in months.json()["trend"]] == [
        ("2026-01-01", 1),
        ("2026-02-01", 2),
    ]
    days = _get(api_viewer, survey, since="2026-01-30", until="2026-02-02", trend="day").json()
    assert [p["response_count"] for p in days["trend"]] == [0, 1, 2, 0]


def test_channel_filter(api_viewer, company):
    survey = make_survey(company)
    _bulk(survey, [10, 10], channel="email")
    _bulk(survey, [0], channel="sms")
    assert _get(api_viewer, survey, channel="sms").json()["nps"] == -100
    assert _get(api_viewer, channel="email").json()["response_count"] == 2


# --- Segments ---------------------------------------------------------------------------------


def test_segments_by_contact_property(api_viewer, company):
    survey = make_survey(company)
    _bulk(survey, [10] * 3 + [0], props={"plan": "pro"})
    _bulk(survey, [0, 0], props={"plan": "free"})
    _bulk(survey, [8], props={})
    segments = _get(api_viewer, survey, segment="plan").json()["segments"]
    assert [(s["value"], s["response_count"], s["nps"]) for s in segments] == [
        ("pro", 4, 50),
        ("free", 2, -100),
        (None, 1, 0),  # answers without the property come last
    ]
    assert segments[0]["ci95"]["low"] < 50


def test_segments_by_channel_survey_and_language(api_viewer, company):
    first, second = make_survey(company, name="Shop"), make_survey(company, name="Support")
    _bulk(first, [10, 10], channel="email", language="ru")
    _bulk(second, [0], channel="sms", language="kk")
    rollup_fold()
    _bulk(second, [9], channel="sms", language="kk")  # pending delta
    by_channel = _get(api_viewer, segment="channel").json()["segments"]
    assert [(s["value"], s["name"], s["response_count"]) for s in by_channel] == [
        ("email", "Email", 2),
        ("sms", "SMS", 2),
    ]
    by_survey = _get(api_viewer, segment="survey").json()["segments"]
    assert [(s["value"], s["name"], s["nps"]) for s in by_survey] == [
        (first.public_id, "Shop", 100),
        (second.public_id, "Support", 0),
    ]
    with CaptureQueriesContext(connection) as queries:
        by_language = _get(api_viewer, segment="language").json()["segments"]
    assert [(s["value"], s["response_count"]) for s in by_language] == [("ru", 2), ("kk", 2)]
    # Channel, survey and language segments come from the rollup, not the responses table.
    assert not [q for q in queries if '"responses_response"' in q["sql"]]
    # A property spelt like a kind.
    assert _get(api_viewer, segment="property:channel").json()["segments"] == [
        {
            "value": None,
            "name": "",
            "response_count": 4,
            "nps": 50,
            "ci95": pytest.approx(_get(api_viewer).json()["ci95"]),
            "low_sample": True,
        }
    ]


def test_anonymous_survey_hides_segments_under_five(api_viewer, company):
    survey = make_survey(company, anonymous=True)
    _bulk(survey, [10] * 5, props={"department": "sales"})
    _bulk(survey, [0] * 4, props={"department": "legal"})
    body = _get(api_viewer, survey, segment="department").json()
    assert [s["value"] for s in body["segments"]] == ["sales"]
    assert body["segments_hidden"] == 1
    # Company-wide the anonymous answers are in the figures: the rule holds there too.
    assert [s["value"] for s in _get(api_viewer, segment="department").json()["segments"]] == [
        "sales"
    ]
    # Not anonymous: every segment is shown.
    open_survey = make_survey(company)
    _bulk(open_survey, [0], props={"department": "legal"})
    body = _get(api_viewer, open_survey, segment="department").json()
    assert [s["value"] for s in body["segments"]] == ["legal"]


# --- Input, outsiders, roles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-06-02", "until": "2026-06-01"}, "until"),
        ({"trend": "hour"}, "trend"),
        ({"channel": "pigeon"}, "channel"),
        ({"since": "2000-01-01", "until": "2026-01-01", "trend": "day"}, "trend"),
    ],
)
def test_bad_input_is_a_400(api_viewer, company, params, field):
    survey = make_survey(company)
    for url in (_url(survey), _url()):
        response = Client().get(url, params, **api_viewer.headers)
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["status"] == 400
        assert field in str(error), error


def test_outsider_key_cannot_see_a_survey(api_outsider, company):
    survey = make_survey(company)
    _bulk(survey, [10, 0])
    response = _get(api_outsider, survey, segment="channel", trend="day", since=_day(3))
    assert response.status_code == 404
    assert survey.public_id not in response.content.decode()


def test_outsider_company_wide_sees_only_its_own(api_outsider, company):
    _bulk(make_survey(company), [10, 0, 0], props={"plan": "secret-plan"})
    body = _get(api_outsider, segment="plan").json()
    assert body["response_count"] == 0
    assert body["segments"] == []


def test_every_role_reads_and_no_key_is_refused(company):
    survey = make_survey(company)
    _bulk(survey, [10])
    for role in (Role.VIEWER, Role.ADMIN):  # a key is read-only or full access
        key = api_key_create(company=company, name=role, role=role).key
        for url in (_url(survey), _url()):
            response = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
            assert response.status_code == 200, (role, url)
            assert response.json()["response_count"] == 1
    assert Client().get(_url()).status_code == 401
    full = api_key_create(company=company, name="w").key
    assert Client().post(_url(), HTTP_AUTHORIZATION=f"Bearer {full}").status_code == 405


# --- Cost flat in data size -------------------------------------------------------------------


def _grow(company, surveys, n: int) -> None:
    for i in range(n):
        survey = surveys[i % len(surveys)]
        when = NOON - timedelta(days=i % 90, hours=i % 7)
        _bulk(
            survey,
            [i % 11, (i * 7) % 11],
            when=when,
            channel=("email", "sms", "link")[i % 3],
            language=("en", "ru", "kk")[i % 3],
            props={"plan": f"p{i % 4}"},
        )


def _queries(persona, survey=None, **params: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = _get(persona, survey, **params)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize("segment", ["plan", "survey", "channel", "language"])
def test_query_count_is_flat_as_data_grows(api_viewer, company, segment):
    surveys = [make_survey(company, name=f"S{i}") for i in range(3)]
    params = {"since": "2026-03-01", "until": "2026-06-30", "trend": "week", "segment": segment}
    _grow(company, surveys, 3)
    _get(api_viewer)  # the key's first use of the day is recorded once: not part of the count
    small = (_queries(api_viewer, surveys[0], **params), _queries(api_viewer, **params))
    _grow(company, surveys, 300)
    rollup_fold()
    _grow(company, surveys, 30)  # some pending deltas too
    large = (_queries(api_viewer, surveys[0], **params), _queries(api_viewer, **params))
    assert small == large
    assert max(large) <= 12, large


# --- Schema -----------------------------------------------------------------------------------


def test_schema_documents_both_endpoints():
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    for path, operation_id in (
        ("/api/v1/metrics/", "company_metrics"),
        ("/api/v1/surveys/{survey_id}/metrics/", "survey_metrics"),
    ):
        get = schema["paths"][path]["get"]
        assert get["operationId"] == operation_id
        names = {p["name"] for p in get["parameters"]}
        assert {"since", "until", "trend", "channel", "segment"} <= names
        since = next(p for p in get["parameters"] if p["name"] == "since")
        assert since["schema"]["format"] == "date"
    metrics = schema["components"]["schemas"]["Metrics"]["properties"]
    for field in ("response_count", "nps", "ci95", "low_sample", "band", "previous", "trend"):
        assert field in metrics
    assert "segments" in metrics
    previous = schema["components"]["schemas"]["PreviousPeriodFigures"]["properties"]
    assert {"difference", "p_value", "significant"} <= set(previous)


def test_dates_are_whole_days_in_the_company_time_zone(api_viewer, company):
    company.time_zone = "Pacific/Auckland"  # UTC+12 in June
    company.save(update_fields=["time_zone"])
    survey = make_survey(company)
    _bulk(survey, [10], when=datetime(2026, 6, 14, 12, 30, tzinfo=UTC))  # 00:30 June 15 local
    _bulk(survey, [0], when=datetime(2026, 6, 14, 11, 30, tzinfo=UTC))  # 23:30 June 14 local
    body = _get(api_viewer, survey, since="2026-06-15", until="2026-06-15").json()
    assert (body["response_count"], body["nps"]) == (1, 100)
    assert body["previous"]["nps"] == -100
    assert body["until"] == date(2026, 6, 15).isoformat()


def test_all_time_trend_runs_from_the_first_answer_to_today(api_viewer, company):
    survey = make_survey(company)
    _bulk(survey, [10], when=timezone.now() - timedelta(days=70))
    trend = _get(api_viewer, survey, trend="month").json()["trend"]
    assert trend[0]["response_count"] == 1
    assert trend[-1]["end"] == _day(0)
    assert sum(p["response_count"] for p in trend) == 1
    assert len(trend) in (3, 4)  # 70 days span three or four calendar months
