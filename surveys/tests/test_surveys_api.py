"""/api/v1/surveys/: CRUD scoped by the key's company, field errors, delete vs archive."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from surveys.models import Contact, Invitation, Survey, SurveyStatus
from surveys.services.surveys import survey_create
from surveys.tokens import new_nonce, token_for, token_hash

pytestmark = pytest.mark.django_db

LIST = reverse("api-surveys")


def detail(survey_id: str) -> str:
    return reverse("api-survey", kwargs={"survey_id": survey_id})


def call(client, method, url, persona, body=None):
    return client.generic(
        method,
        url,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        **persona.headers,
    )


def test_create_then_read(client, company, api_owner):
    body = {
        "name": "Customer pulse",
        "kind": "enps",
        "default_language": "ru",
        "texts": {"ru": {"question": "Порекомендуете ли вы {company} как работодателя?"}},
        "extra_questions": [
            {
                "kind": "choice",
                "text": {"ru": "Ваш отдел?"},
                "choices": [{"ru": "Продажи"}, {"ru": "Склад"}],
            }
        ],
        "accent_color": "#0E7490",
        "reminder_after_days": 3,
    }
    response = call(client, "POST", LIST, api_owner, body)
    assert response.status_code == 201, response.content
    data = response.json()
    survey = Survey.objects.for_company(company).get()
    assert data["id"] == survey.public_id
    assert data["status"] == "draft"
    assert data["anonymous"] is True  # eNPS
    assert data["accent_color"] == "#0e7490"
    assert data["texts"] == body["texts"]
    assert data["extra_questions"][0]["id"]
    assert data["extra_questions"][0]["choices"] == [{"ru": "Продажи"}, {"ru": "Склад"}]
    assert "pk" not in data

    response = call(client, "GET", detail(survey.public_id), api_owner)
    assert response.status_code == 200
    assert response.json() == data


def test_list_is_cursor_paginated_newest_first(client, company, api_viewer):
    for n in range(3):
        survey_create(company=company, name=f"S{n}")
    response = call(client, "GET", LIST + "?page_size=2", api_viewer)
    assert response.status_code == 200
    page = response.json()
    assert [s["name"] for s in page["results"]] == ["S2", "S1"]
    assert page["next"]
    rest = call(client, "GET", page["next"], api_viewer).json()
    assert [s["name"] for s in rest["results"]] == ["S0"]


def test_list_filters_by_status(client, company, api_owner):
    survey_create(company=company, name="draft one")
    active = survey_create(company=company, name="live one")
    Survey.objects.for_company(company).filter(pk=active.pk).update(status="active")
    response = call(client, "GET", LIST + "?status=active", api_owner)
    assert [s["name"] for s in response.json()["results"]] == ["live one"]
    response = call(client, "GET", LIST + "?status=nonsense", api_owner)
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x", "kind": "csat"}, "kind"),
        ({"name": "x", "texts": {"de": {"question": "Wie?"}}}, "texts"),
        ({"name": "x", "texts": {"en": {"subtitle": "?"}}}, "texts"),
        (
            {"name": "x", "extra_questions": [{"kind": "text", "text": {"en": "?"}}] * 6},
            "extra_questions",
        ),
        (
            {
                "name": "x",
                "extra_questions": [
                    {"kind": "choice", "text": {"en": "?"}, "choices": [{"en": "a"}]}
                ],
            },
            "extra_questions",
        ),
        ({"name": "x", "accent_color": "blue"}, "accent_color"),
        ({"name": "x", "logo_url": "http://acme.test/l.png"}, "logo_url"),
        ({"name": "x", "sample_percent": 0}, "sample_percent"),
        ({"name": "x", "throttle_days": -1}, "throttle_days"),
        ({"name": "x", "reminder_after_days": 100}, "reminder_after_days"),
        ({"name": "x", "status": "active"}, "status"),  # create has no status
    ],
)
def test_invalid_create_is_a_400_with_field_errors_and_saves_nothing(
    client, company, api_owner, body, field
):
    response = call(client, "POST", LIST, api_owner, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert not Survey.objects.for_company(company).exists()


def test_patch_changes_only_what_is_sent_and_status_in_one_go(client, company, api_owner):
    survey = survey_create(company=company, name="Before", sample_percent=50)
    response = call(
        client,
        "PATCH",
        detail(survey.public_id),
        api_owner,
        {"name": "After", "status": "active", "scale_style": "neutral"},
    )
    assert response.status_code == 200, response.content
    survey.refresh_from_db()
    assert (survey.name, survey.status, survey.scale_style, survey.sample_percent) == (
        "After",
        "active",
        "neutral",
        50,
    )
    assert response.json()["status"] == "active"


def test_patch_with_a_bad_status_change_saves_nothing(client, company, api_owner):
    survey = survey_create(company=company, name="Before")
    response = call(
        client, "PATCH", detail(survey.public_id), api_owner, {"name": "After", "status": "paused"}
    )
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]
    survey.refresh_from_db()
    assert (survey.name, survey.status) == ("Before", "draft")


def test_patch_cannot_change_the_kind_after_draft(client, company, api_owner):
    survey = survey_create(company=company, name="Team", kind="enps")
    Survey.objects.for_company(company).filter(pk=survey.pk).update(status="active")
    response = call(client, "PATCH", detail(survey.public_id), api_owner, {"kind": "nps"})
    assert response.status_code == 400
    assert "kind" in response.json()["error"]["fields"]
    survey.refresh_from_db()
    assert survey.anonymous is True


def test_delete_removes_an_unused_survey(client, company, api_owner):
    survey = survey_create(company=company, name="Unused")
    response = call(client, "DELETE", detail(survey.public_id), api_owner)
    assert response.status_code == 204
    assert not Survey.objects.for_company(company).exists()


def test_delete_archives_a_survey_with_invitations(client, company, api_owner):
    survey = survey_create(company=company, name="Used")
    contact = Contact.objects.create(company=company, email="a@b.test")
    nonce = new_nonce()
    Invitation.objects.create(
        company=company,
        survey=survey,
        contact=contact,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
    )
    response = call(client, "DELETE", detail(survey.public_id), api_owner)
    assert response.status_code == 200
    assert response.json()["status"] == "archived"
    survey.refresh_from_db()
    assert survey.status == SurveyStatus.ARCHIVED
    assert Invitation.objects.for_company(company).count() == 1


def test_read_only_key_reads_but_cannot_write(client, company, api_viewer):
    survey = survey_create(company=company, name="Mine")
    assert call(client, "GET", LIST, api_viewer).status_code == 200
    assert call(client, "GET", detail(survey.public_id), api_viewer).status_code == 200
    for method, url, body in (
        ("POST", LIST, {"name": "New"}),
        ("PATCH", detail(survey.public_id), {"name": "Changed"}),
        ("DELETE", detail(survey.public_id), None),
    ):
        response = call(client, method, url, api_viewer, body)
        assert response.status_code == 403, (method, response.content)
        assert response.json()["error"]["code"] == "permission_denied"
    survey.refresh_from_db()
    assert survey.name == "Mine"
    assert Survey.objects.for_company(company).count() == 1


def test_another_companys_key_sees_nothing(client, company, api_outsider):
    survey = survey_create(company=company, name="Secret survey")
    response = call(client, "GET", LIST, api_outsider)
    assert response.status_code == 200
    assert response.json()["results"] == []
    for method, body in (("GET", None), ("PATCH", {"name": "Hijacked"}), ("DELETE", None)):
        response = call(client, method, detail(survey.public_id), api_outsider, body)
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "not_found"
    survey.refresh_from_db()
    assert survey.name == "Secret survey"


def test_no_key_is_401(client):
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401
