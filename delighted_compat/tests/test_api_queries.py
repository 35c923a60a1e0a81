"""The `/v1/` lists cost the same number of queries whatever the page holds."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from companies.services import api_key_create
from delighted_compat.tests.test_api import call

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(company: Company) -> str:
    return api_key_create(company=company, name="delighted").key


def _people_and_answers(key: str, count: int, start: int) -> None:
    for n in range(start, start + count):
        person = call(
            "POST",
            "/v1/people",
            key,
            {"email": f"p{n}@example.com", "properties": {"plan": "pro"}, "send": False},
        ).json()
        response = call(
            "POST", "/v1/survey_responses", key, {"person": person["id"], "score": n % 11}
        )
        assert response.status_code in (200, 201), response.content


def _queries(path: str, key: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call("GET", path, key)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/people?per_page=100",
        "/v1/survey_responses?per_page=100",
        "/v1/survey_responses?per_page=100&expand[]=person",
        "/v1/unsubscribes?per_page=100",
    ],
)
def test_a_page_costs_the_same_for_2_or_12_rows(key: str, path: str) -> None:
    _people_and_answers(key, 2, 0)
    for n in range(2):
        call("POST", "/v1/unsubscribes", key, {"person_email": f"p{n}@example.com"})
    few = _queries(path, key)
    _people_and_answers(key, 10, 2)
    for n in range(2, 12):
        call("POST", "/v1/unsubscribes", key, {"person_email": f"p{n}@example.com"})
    many: Any = _queries(path, key)
    assert many == few, (path, few, many)
