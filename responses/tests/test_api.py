"""GET /api/v1/responses/: fields, filters, cursor pages, anonymity, outsiders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from responses.models import Response
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db
URL = "/api/v1/responses/"


def _answer(survey, email: str, score: int, comment: str = "", **extra):
    invitation, _token = make_invitation(
        survey, make_contact(survey.company, email, name="Person " + email[0])
    )
    return response_record(
        invitation=invitation,
        survey=survey,
        score=score,
        comment=comment,
        channel="email",
        language="en",
        **extra,
    )


def _get(persona, **params):
    return Client().get(URL, params, **persona.headers)


def test_fields(api_viewer, company):
    survey = make_survey(company)
    response = _answer(survey, "ann@c.test", 9, "nice")
    body = _get(api_viewer).json()
    (row,) = body["results"]
    assert row == {
        "id": response.public_id,
        "survey": survey.public_id,
        "invitation": response.invitation.public_id,
        "contact": {"id": response.contact.public_id, "email": "ann@c.test", "name": "Person a"},
        "score": 9,
        "category": "promoter",
        "comment": "nice",
        "extra_answers": {},
        "channel": "email",
        "language": "en",
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    assert body["next"] is None


def test_anonymous_survey_never_shows_identity(api_viewer, company):
    survey = make_survey(company, anonymous=True, kind="enps")
    _answer(survey, "emp@acme.test", 4, "meh")
    (row,) = _get(api_viewer).json()["results"]
    assert row["contact"] is None
    assert row["invitation"] is None
    assert "emp@acme.test" not in str(row)


def test_filters(api_viewer, company):
    a, b = make_survey(company, name="A"), make_survey(company, name="B")
    old = _answer(a, "o@c.test", 1)
    Response.objects.for_company(company).filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10),
        updated_at=timezone.now() - timedelta(days=10),
    )
    new_a = _answer(a, "n@c.test", 10)
    new_b = _answer(b, "m@c.test", 8)

    def ids(**params):
        response = _get(api_viewer, **params)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    day = timezone.now() - timedelta(days=1)
    assert ids(survey=a.public_id) == {old.public_id, new_a.public_id}
    assert ids(since=day.isoformat()) == {new_a.public_id, new_b.public_id}
    assert ids(until=day.isoformat()) == {old.public_id}
    assert ids(category="passive") == {new_b.public_id}
    assert ids(updated_since=day.isoformat()) == {new_a.public_id, new_b.public_id}
    # Changing the old answer brings it into updated_since.
    response_record(invitation=old.invitation, survey=a, score=2, channel="email", language="en")
    assert old.public_id in ids(updated_since=day.isoformat())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01"}, "until"),
        ({"category": "fan"}, "category"),
        ({"updated_since": "x"}, "updated_since"),
        ({"survey": "unknown"}, "survey"),
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
    ],
)
def test_bad_filters_are_400_with_field_errors(api_viewer, params, field):
    response = _get(api_viewer, **params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_cursor_pagination_walks_everything_once(api_viewer, company):
    survey = make_survey(company)
    made = {_answer(survey, f"{i}@c.test", i % 11).public_id for i in range(7)}
    seen: list[str] = []
    url = URL + "?page_size=3"
    while url:
        body = Client().get(url, **api_viewer.headers).json()
        assert len(body["results"]) <= 3
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert len(seen) == 7
    assert set(seen) == made


def test_outsider_sees_nothing_and_cannot_filter_by_our_survey(api_outsider, company):
    survey = make_survey(company)
    _answer(survey, "ann@c.test", 9, "secret comment")
    body = _get(api_outsider).json()
    assert body["results"] == []
    response = _get(api_outsider, survey=survey.public_id)
    assert response.status_code == 400
    assert "survey" in response.json()["error"]["fields"]


def test_no_key_is_401(db):
    assert Client().get(URL).status_code == 401
