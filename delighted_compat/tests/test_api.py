"""Delighted's ``/v1/`` conventions over HTTP (Django's test client), and the product beneath:
a survey scheduled through ``/v1/`` goes out through our sending and our answer page."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from companies.models import Company, Role
from companies.services import api_key_create
from delighted_compat.api.base import unflatten
from delighted_compat.models import ApiKeySurvey, DefaultApiSurvey
from notifications.models import OutboxMessage, Suppression, SuppressionReason
from surveys.models import Contact, Invitation, InvitationStatus, SurveyStatus
from surveys.services.dispatch import invitations_dispatch_due
from surveys.services.send import invitations_send
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db


def basic(key: str, *, colon: bool = False) -> str:
    raw = f"{key}:" if colon else key
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.fixture
def key(company: Company) -> str:
    return api_key_create(company=company, name="delighted").key


def call(method: str, path: str, key: str | None, data: Any = None, **extra: Any) -> Any:
    client = Client(raise_request_exception=False)
    if key is not None:
        extra.setdefault("HTTP_AUTHORIZATION", basic(key))
    if data is not None and "content_type" not in extra:
        extra["content_type"] = "application/json"
        data = json.dumps(data)
    return client.generic(method, path, data=data or "", **extra)


def test_unflatten_brackets() -> None:
    pairs = [
        ("email", "a@b.c"),
        ("properties[Plan]", "pro"),
        ("properties[a][b]", "1"),
        ("expand[]", "person"),
        ("expand[]", "notes"),
    ]
    assert unflatten(pairs) == {
        "email": "a@b.c",
        "properties": {"Plan": "pro", "a": {"b": "1"}},
        "expand": ["person", "notes"],
    }


def test_both_basic_forms_and_json_suffix_work_and_nothing_redirects(key: str) -> None:
    for colon in (False, True):
        for path in ("/v1/metrics", "/v1/metrics.json"):
            response = call("GET", path, key, HTTP_AUTHORIZATION=basic(key, colon=colon))
            assert response.status_code == 200, (path, response.content)
            assert response["Content-Type"] == "application/json; charset=utf-8"
    # A trailing slash or an unknown path: Delighted's JSON 404, never a redirect.
    for path in ("/v1/people/", "/v1/nothing", "/v1/people.json/"):
        response = call("POST", path, key, {"email": "a@example.com"})
        assert response.status_code == 404, path
        assert response.json() == {"status": 404, "message": "Not Found"}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_a_wrong_key_is_401_with_the_delighted_realm_on_every_method(method: str) -> None:
    for authorization in (None, basic("nps_00000000_nope"), "Bearer x", "Basic !!!"):
        extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
        response = call(method, "/v1/people", None, {}, **extra)
        assert response.status_code == 401, (authorization, response.content)
        assert response["WWW-Authenticate"] == 'Basic realm="Delighted"'
        assert response.json()["status"] == 401


def test_form_bodies_with_brackets_and_string_booleans(key: str, company: Company) -> None:
    response = call(
        "POST",
        "/v1/people.json",
        key,
        "email=Foo%40Example.com&send=false&properties%5BPlan%5D=pro&properties%5Bn%5D=3",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "foo@example.com"
    assert body["properties"] == {"Plan": "pro", "n": "3"}
    assert body["survey_scheduled_at"] is None
    assert not Invitation.objects.for_company(company).exists()


def test_person_shape_ids_as_strings_and_explicit_nulls(key: str) -> None:
    body = call("POST", "/v1/people", key, {"email": "a@example.com", "send": False}).json()
    assert set(body) >= {
        "id",
        "email",
        "name",
        "phone_number",
        "created_at",
        "last_sent_at",
        "next_survey_scheduled_at",
        "survey_scheduled_at",
        "properties",
    }
    assert isinstance(body["id"], str)
    assert isinstance(body["created_at"], int)
    assert body["name"] is None
    assert body["phone_number"] is None


def test_validation_errors_are_422_with_errors(key: str) -> None:
    for data, field in (
        ({}, "email"),
        ({"email": "not an email"}, "email"),
        ({"email": "a@example.com", "channel": "sms"}, "phone_number"),
        ({"email": "a@example.com", "delay": "soon"}, "delay"),
        ({"email": "a@example.com", "properties": "x"}, "properties"),
    ):
        response = call("POST", "/v1/people", key, data)
        assert response.status_code == 422, (data, response.content)
        body = response.json()
        assert body["status"] == 422
        assert body["message"] == "Unprocessable Entity"
        assert field in body["errors"], (data, body)
    response = call("GET", "/v1/people?page_info=forged", key)
    assert response.status_code == 422
    response = call("GET", "/v1/survey_responses?order=sideways", key)
    assert response.status_code == 422


def test_cursor_link_is_absolute_and_keeps_every_filter(key: str) -> None:
    for n in range(3):
        call("POST", "/v1/people", key, {"email": f"p{n}@example.com", "send": False})
    response = call("GET", "/v1/people?per_page=2&since=1&auto_handle_rate_limits=True", key)
    assert [p["email"] for p in response.json()] == ["p0@example.com", "p1@example.com"]
    match = re.fullmatch(
        r'<(http://testserver/v1/people\.json\?[^>]+)>; rel="next"', response["Link"]
    )
    assert match, response["Link"]
    query = parse_qs(urlsplit(match.group(1)).query)
    assert query["per_page"] == ["2"]
    assert query["since"] == ["1"]
    assert "page_info" in query
    last = call("GET", match.group(1).removeprefix("http://testserver"), key, {})
    assert [p["email"] for p in last.json()] == ["p2@example.com"]
    assert "Link" not in last


def test_delete_by_phone_number_with_percent_encoding(key: str, company: Company) -> None:
    created = call(
        "POST",
        "/v1/people",
        key,
        {"phone_number": "+14155551212", "channel": "sms", "send": False},
    )
    assert created.status_code == 201, created.content
    response = call("DELETE", "/v1/people/phone_number%3A%2B14155551212", key, {})
    assert response.status_code == 202
    assert response.json() == {"ok": True}
    assert not Contact.objects.for_company(company).exists()
    assert call("DELETE", "/v1/people/email%3Anobody%40example.com", key).status_code == 404


def test_email_update_changes_the_persons_address(key: str, company: Company) -> None:
    first = call("POST", "/v1/people", key, {"email": "old@example.com", "send": False}).json()
    moved = call(
        "POST",
        "/v1/people",
        key,
        {"email": "old@example.com", "email_update": "new@example.com", "send": False},
    ).json()
    assert moved["id"] == first["id"]
    assert moved["email"] == "new@example.com"
    assert Contact.objects.for_company(company).get().email == "new@example.com"


def test_a_key_bound_to_a_survey_acts_on_it_and_others_on_the_default(
    key: str, company: Company
) -> None:
    survey = active_survey(company)
    bound = api_key_create(company=company, name="bound")
    ApiKeySurvey.objects.create(company=company, api_key=bound.api_key, survey=survey)
    call("POST", "/v1/people", bound.key, {"email": "a@example.com"})
    assert Invitation.objects.for_company(company).get().survey == survey
    assert not DefaultApiSurvey.objects.for_company(company).exists()
    call("POST", "/v1/people", key, {"email": "b@example.com"})
    default = DefaultApiSurvey.objects.for_company(company).get().survey
    assert default != survey
    assert default.status == SurveyStatus.ACTIVE
    assert default.default_language == company.default_language
    assert Invitation.objects.for_company(company).get(contact__email="b@example.com").survey == (
        default
    )


def test_read_only_key_cannot_write(company: Company) -> None:
    reader = api_key_create(company=company, name="reader", role=Role.VIEWER).key
    assert call("GET", "/v1/people", reader).status_code == 200
    for method, path in (
        ("POST", "/v1/people"),
        ("DELETE", "/v1/people/email:a@example.com"),
        ("POST", "/v1/unsubscribes"),
    ):
        assert call(method, path, reader, {"person_email": "a@example.com"}).status_code == 403


def test_unsubscribe_is_our_suppression_and_the_reverse(key: str, company: Company) -> None:
    call("POST", "/v1/unsubscribes", key, {"person_email": "a@example.com"})
    assert Suppression.objects.for_company(company).get().reason == SuppressionReason.UNSUBSCRIBED
    Suppression.objects.create(
        company=company, channel="email", address="b@example.com", reason="unsubscribed"
    )
    listed = call("GET", "/v1/unsubscribes", key).json()
    assert [u["email"] for u in listed] == ["a@example.com", "b@example.com"]
    assert isinstance(listed[0]["person_id"], str)
    assert listed[1]["person_id"] is None
    # A suppressed person gets no survey: nothing is scheduled.
    body = call("POST", "/v1/people", key, {"email": "a@example.com"}).json()
    assert body["survey_scheduled_at"] is None


def test_last_sent_at_within_the_throttle_window_schedules_nothing(key: str) -> None:
    recently = int((timezone.now() - timedelta(days=3)).timestamp())
    body = call(
        "POST", "/v1/people", key, {"email": "a@example.com", "last_sent_at": recently}
    ).json()
    assert body["survey_scheduled_at"] is None
    long_ago = int((timezone.now() - timedelta(days=400)).timestamp())
    body = call(
        "POST", "/v1/people", key, {"email": "a@example.com", "last_sent_at": long_ago}
    ).json()
    assert isinstance(body["survey_scheduled_at"], int)


def test_a_survey_scheduled_through_v1_is_answered_on_our_page(
    key: str, company: Company, settings: Any
) -> None:
    """Delayed send → the dispatcher → our email → our answer page → /v1/ responses and metrics."""
    settings.EMAIL_PROVIDER = "outbox"
    settings.EMAIL_BACKEND = "notifications.backends.OutboxEmailBackend"
    person = call(
        "POST", "/v1/people", key, {"email": "ana@example.com", "delay": 3600, "name": "Ana"}
    ).json()
    listed = call("GET", "/v1/people", key).json()
    assert listed[0]["next_survey_scheduled_at"] == person["survey_scheduled_at"]
    # Not due yet: nothing goes out.
    assert invitations_dispatch_due(now=timezone.now()) == 0
    invitations_dispatch_due(now=timezone.now() + timedelta(hours=1, seconds=1))
    invitation = Invitation.objects.for_company(company).get()
    invitations_send(company=company, invitation_ids=[invitation.pk])
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    [message] = OutboxMessage.objects.all()
    assert message.to == ["ana@example.com"]
    link = re.search(r"https?://[^\s\"<>]+/r/[^/\s\"<>]+/9/", message.html)
    assert link, message.html
    page = urlsplit(link.group(0)).path

    client = Client(enforce_csrf_checks=True)
    html = client.get(page).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert csrf
    answered = client.post(
        page, {"csrfmiddlewaretoken": csrf.group(1), "score": "9", "comment": "Great"}
    )
    assert answered.status_code == 303

    [response] = call("GET", "/v1/survey_responses?expand[]=person", key).json()
    assert response["score"] == 9
    assert response["comment"] == "Great"
    assert response["person"]["id"] == person["id"]
    assert response["person"]["last_responded_at"] == response["created_at"]
    metrics = call("GET", "/v1/metrics", key).json()
    assert metrics["promoter_count"] == 1
    assert metrics["nps"] == 100
    people = call("GET", "/v1/people", key).json()
    assert invitation.sent_at is not None
    assert people[0]["last_sent_at"] == int(invitation.sent_at.timestamp())
    assert people[0]["next_survey_scheduled_at"] is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"email": "a\\u0000@example.com"}', "application/json"),
        ("email=a%00%40example.com&name=x", "application/x-www-form-urlencoded"),
        ("name=%00&email=a%40example.com", "application/x-www-form-urlencoded"),
        ('{"email": ', "application/json"),
        ("[" * 100 + "]" * 100, "application/json"),
        (
            "properties" + "[a]" * 100 + "=1&email=a%40example.com",
            "application/x-www-form-urlencoded",
        ),
    ],
)
def test_hostile_bodies_are_422s_and_store_nothing(
    key: str, company: Company, body: str, content_type: str
) -> None:
    response = call("POST", "/v1/people", key, body, content_type=content_type)
    assert response.status_code == 422, response.content
    assert response.json()["status"] == 422
    assert not Contact.objects.for_company(company).exists()


def test_an_sms_survey_request_goes_out_by_text_at_the_recipients_allowed_hour(
    key: str, company: Company
) -> None:
    from surveys.sms import quiet_hours_until

    before = timezone.now()
    body = call(
        "POST",
        "/v1/people",
        key,
        {"email": "ana@example.com", "phone_number": "+77012345678", "channel": "sms", "delay": 60},
    ).json()
    invitation = Invitation.objects.for_company(company).get()
    assert invitation.channel == "sms"
    assert invitation.contact.email == "ana@example.com"
    assert body["phone_number"] == "+77012345678"
    assert body["survey_scheduled_at"] == int(invitation.scheduled_for.timestamp())
    due = before + timedelta(seconds=60)
    window = quiet_hours_until(contact=invitation.contact, company=company, now=due)
    assert invitation.scheduled_for >= (window or due)


def test_found_by_email_the_phone_number_is_updated(key: str, company: Company) -> None:
    call("POST", "/v1/people", key, {"email": "a@example.com", "send": False})
    body = call(
        "POST",
        "/v1/people",
        key,
        {"email": "a@example.com", "phone_number": "+77012345678", "send": False},
    ).json()
    assert body["phone_number"] == "+77012345678"
    assert Contact.objects.for_company(company).get().phone == "+77012345678"


def test_accept_header_that_excludes_json_is_406(key: str) -> None:
    assert call("GET", "/v1/metrics", key, HTTP_ACCEPT="*/*").status_code == 200
    response = call("GET", "/v1/metrics", key, HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert response.json()["status"] == 406


def test_extra_questions_are_additional_answers(key: str, company: Company) -> None:
    from delighted_compat.api.services import project_survey
    from responses.models import Response

    api_key = api_key_create(company=company, name="other").api_key
    survey = project_survey(api_key=api_key)
    survey.extra_questions = [
        {
            "id": "visit",
            "kind": "choice",
            "text": {"en": "How often do you visit?", "ru": "Как часто вы приходите?"},
            "choices": [{"en": "Weekly", "ru": "Каждую неделю"}, {"en": "Rarely", "ru": "Редко"}],
        },
        {"id": "dish", "kind": "text", "text": {"en": "Your favourite dish?"}},
    ]
    survey.save()
    Response.objects.create(
        company=company,
        survey=survey,
        score=8,
        category="passive",
        channel="link",
        language="ru",
        extra_answers={"visit": 1, "dish": "Plov"},
    )
    [answer] = call("GET", "/v1/survey_responses", key).json()
    assert answer["person"] is None
    visit, dish = answer["additional_answers"]
    assert visit["question"] == {
        "id": "visit",
        "type": "select_one",
        "text": "Как часто вы приходите?",
    }
    assert visit["value"]["select_one"] == {"id": "1", "text": "Редко"}
    assert visit["value"]["free_response"] is None
    assert dish["question"]["type"] == "free_response"
    assert dish["value"]["free_response"] == "Plov"


def test_deleting_a_person_erases_their_answers_invitations_suppressions_and_ledger(
    key: str, company: Company
) -> None:
    """The full erasure (privacy.services): their answer's score stays counted, linked to
    nobody; their unsubscribe stays, as a hash of the address only."""
    from notifications.models import Delivery, DeliveryStatus
    from responses.models import Response

    person = call("POST", "/v1/people", key, {"email": "ana@example.com", "delay": 60}).json()
    other = call("POST", "/v1/people", key, {"email": "bob@example.com", "send": False}).json()
    for who in (person, other):
        call(
            "POST",
            "/v1/survey_responses",
            key,
            {"person": who["id"], "score": 4, "comment": f"from {who['email']}"},
        )
    call("POST", "/v1/unsubscribes", key, {"person_email": "ana@example.com"})
    for address in ("ana@example.com", "bob@example.com"):
        Delivery.objects.create(
            company=company, channel="email", to=address, status=DeliveryStatus.DELIVERED
        )

    response = call("DELETE", f"/v1/people/{person['id']}", key, {})
    assert response.status_code == 202
    assert list(Contact.objects.for_company(company).values_list("email", flat=True)) == [
        "bob@example.com"
    ]
    answers = Response.objects.for_company(company).order_by("contact_id")
    assert list(answers.values_list("contact__email", "comment", "score")) == [
        ("bob@example.com", "from bob@example.com", 4),
        (None, "", 4),
    ]
    assert not Invitation.objects.for_company(company).exists()
    assert [s.address[:7] for s in Suppression.objects.for_company(company)] == ["sha256:"]
    assert call("GET", "/v1/unsubscribes", key).json() == []
    assert list(Delivery.objects.for_company(company).values_list("to", flat=True)) == [
        "bob@example.com"
    ]
    assert call("GET", "/v1/metrics", key).json()["response_count"] == 2
    assert call("DELETE", f"/v1/people/{person['id']}", key, {}).status_code == 404


def test_nul_in_the_query_or_path_is_a_json_400(key: str) -> None:
    for path in ("/v1/people?email=a%00b", "/v1/survey_responses/a%00b"):
        response = call("GET", path, key)
        assert response.status_code == 400, path
        assert response["Content-Type"].startswith("application/json")
