"""Delighted's Autopilot at ``/v1/autopilot/{email|sms}`` over HTTP (Django's test client):
the conventions other clients than Python's rely on, and the programme beneath."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core import mail

from companies.models import Company
from companies.services import api_key_create
from delighted_compat.api.services import api_key_bind_survey, default_survey_ensure
from delighted_compat.tests.test_api import basic, call
from surveys.models import (
    AutopilotMember,
    AutopilotProgram,
    Contact,
    Invitation,
    Survey,
    SurveyStatus,
)
from surveys.services.autopilot import autopilot_configure, autopilot_dispatch_due
from surveys.services.surveys import survey_set_status
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db

START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def key(company: Company) -> str:
    return api_key_create(company=company, name="delighted").key


def _program(
    company: Company, survey: Survey | None = None, channel: str = "email", **values: Any
) -> AutopilotProgram:
    options: dict[str, Any] = {"active": True, "cadence_days": 90, "first_delay_days": 0}
    return autopilot_configure(
        company=company,
        survey=survey or default_survey_ensure(company=company),
        channel=channel,
        **{**options, **values},
    )


def test_paths_with_and_without_json_and_any_other_platform_is_404(
    key: str, company: Company
) -> None:
    _program(company)
    for path in ("/v1/autopilot/email", "/v1/autopilot/email.json"):
        response = call("GET", path, key, {})  # the Python client's ``{}`` body on a GET
        assert response.status_code == 200, path
        assert response.json()["platform_id"] == "email"
    for path in ("/v1/autopilot/email/memberships", "/v1/autopilot/sms/memberships.json"):
        assert call("GET", path, key).json() == []
    for path in (
        "/v1/autopilot/whatsapp",
        "/v1/autopilot/whatsapp/memberships",
        "/v1/autopilot/email/",
        "/v1/autopilot/email/memberships/",
    ):
        response = call("GET", path, key)
        assert response.status_code == 404, path
        assert response.json() == {"status": 404, "message": "Not Found"}


def test_php_form_bodies_and_node_query_string_deletes(key: str, company: Company) -> None:
    _program(company)
    response = call(
        "POST",
        "/v1/autopilot/email/memberships.json",
        key,
        "person_email=ana%40example.com&properties[Plan]=pro&properties[State]=CA",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    assert response.json()["properties"] == {"Plan": "pro", "State": "CA"}
    member = AutopilotMember.objects.for_company(company).get()
    assert member.properties == {"Plan": "pro", "State": "CA"}
    # Node's client: the identifier in the query string, no body.
    response = call("DELETE", "/v1/autopilot/email/memberships?person_email=ana%40example.com", key)
    assert response.status_code == 200, response.content
    assert response.json()["person"]["email"] == "ana@example.com"
    assert not AutopilotMember.objects.for_company(company).exists()


def test_the_cursor_link_is_absolute_and_a_foreign_cursor_is_422(
    key: str, company: Company
) -> None:
    _program(company)
    for n in range(3):
        call("POST", "/v1/autopilot/email/memberships", key, {"person_email": f"p{n}@example.com"})
    response = call(
        "GET", "/v1/autopilot/email/memberships?per_page=2&auto_handle_rate_limits=True", key
    )
    assert [m["person"]["email"] for m in response.json()] == ["p0@example.com", "p1@example.com"]
    match = re.fullmatch(
        r'<(http://testserver/v1/autopilot/email/memberships\.json\?[^>]+)>; rel="next"',
        response["Link"],
    )
    assert match, response["Link"]
    query = parse_qs(urlsplit(match.group(1)).query)
    assert query["per_page"] == ["2"]
    assert query["auto_handle_rate_limits"] == ["True"]
    last = call("GET", match.group(1).removeprefix("http://testserver"), key)
    assert [m["person"]["email"] for m in last.json()] == ["p2@example.com"]
    assert "Link" not in last
    # The same cursor on the other platform, a people cursor, or a forged one: refused.
    page_info = query["page_info"][0]
    call("POST", "/v1/people", key, {"email": "q0@example.com", "send": False})
    call("POST", "/v1/people", key, {"email": "q1@example.com", "send": False})
    people_link = call("GET", "/v1/people?per_page=1", key)["Link"]
    people_cursor = parse_qs(urlsplit(people_link.strip("<>").split(">")[0]).query)["page_info"][0]
    for path, cursor in (
        ("/v1/autopilot/sms/memberships", page_info),
        ("/v1/autopilot/email/memberships", people_cursor),
        ("/v1/autopilot/email/memberships", page_info[:-2] + "xx"),
    ):
        response = call("GET", f"{path}?page_info={cursor}", key)
        assert response.status_code == 422, (path, response.content)
        assert response.json()["errors"] == {"page_info": ["is invalid"]}


def test_errors_are_keyed_by_delighteds_parameters(key: str, company: Company) -> None:
    response = call("POST", "/v1/autopilot/email/memberships", key, {"person_email": "a@b.co"})
    assert response.status_code == 422
    assert response.json() == {
        "status": 422,
        "message": "Unprocessable Entity",
        "errors": {"base": ["Recurring surveys are not set up for this channel yet."]},
    }
    _program(company, channel="sms")
    for body, field in (
        ({}, "person_phone_number"),
        ({"person_phone_number": "not a number"}, "person_phone_number"),
        ({"person_email": "ana@example.com"}, "person_phone_number"),  # no number to text
        ({"person_id": "nobody"}, "person_id"),
        ({"person_phone_number": "+77011234567", "properties": "x"}, "properties"),
    ):
        response = call("POST", "/v1/autopilot/sms/memberships", key, body)
        assert response.status_code == 422, body
        assert list(response.json()["errors"]) == [field], (body, response.json())
    assert not AutopilotMember.objects.for_company(company).exists()
    assert not Contact.objects.for_company(company).exists()  # all or nothing
    response = call("DELETE", "/v1/autopilot/sms/memberships", key, {"person_phone_number": "x"})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["person_phone_number"]


def test_a_member_added_through_v1_is_asked_through_our_sending(
    key: str, company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    _program(company, cadence_days=30, first_delay_days=7)
    with time_machine.travel(START, tick=False) as clock:
        call(
            "POST",
            "/v1/autopilot/email/memberships",
            key,
            {"person_email": "ana@example.com", "properties": {"Plan": "pro"}},
        )
        (listed,) = call("GET", "/v1/autopilot/email/memberships", key).json()
        assert listed["next_survey_request"]["survey_scheduled_at"] == int(
            (START + timedelta(days=7)).timestamp()
        )
        clock.shift(timedelta(days=7))
        with django_capture_on_commit_callbacks(execute=True):
            assert autopilot_dispatch_due().asked == 1
        invitation = Invitation.objects.for_company(company).get()
        assert invitation.properties == {"Plan": "pro"}
        assert [m.to for m in mail.outbox] == [["ana@example.com"]]
        (listed,) = call("GET", "/v1/autopilot/email/memberships", key).json()
        assert invitation.sent_at is not None
        assert listed["person"]["last_sent_at"] == int(invitation.sent_at.timestamp())
        assert listed["next_survey_request"]["survey_scheduled_at"] == int(
            (START + timedelta(days=37)).timestamp()
        )
        # Unsubscribed through /v1/: no longer asked, nothing scheduled.
        with django_capture_on_commit_callbacks(execute=True):
            call("POST", "/v1/unsubscribes", key, {"person_email": "ana@example.com"})
        (listed,) = call("GET", "/v1/autopilot/email/memberships", key).json()
        assert listed["next_survey_request"] is None


def test_the_configuration_follows_the_keys_survey_and_its_status(company: Company) -> None:
    default_key = api_key_create(company=company, name="default").key
    bound = api_key_create(company=company, name="bound")
    other = active_survey(company)
    api_key_bind_survey(company=company, api_key=bound.api_key, survey=other)
    program = _program(company, other, cadence_days=180)
    assert call("GET", "/v1/autopilot/email", default_key).json()["active"] is False
    assert call("GET", "/v1/autopilot/email", bound.key).json()["frequency"] == 180 * 86400
    call("POST", "/v1/autopilot/email/memberships", bound.key, {"person_email": "a@example.com"})
    assert AutopilotMember.objects.for_company(company).get().program_id == program.pk
    assert call("GET", "/v1/autopilot/email/memberships", default_key).json() == []
    survey_set_status(company=company, survey=other, status=SurveyStatus.PAUSED)
    response = call("GET", "/v1/autopilot/email", bound.key, HTTP_AUTHORIZATION=basic(bound.key))
    assert response.json()["active"] is False  # its survey asks nobody while paused
