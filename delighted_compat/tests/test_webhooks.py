"""Delighted-format webhooks (spec §7): a receiver written the way Delighted's docs say
(HMAC-SHA256 of the raw body keyed with the key it has, then ``event_type``/``event_data``)
gets a real answer's events, whose ``event_data`` is what ``GET /v1/survey_responses/{id}
?expand[]=person`` answers; beside a Standard Webhooks endpoint of the same company."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from standardwebhooks import Webhook

from companies.models import Role
from companies.services import api_key_create
from delighted_compat.api.services import api_key_bind_survey
from notifications.services import suppression_add
from notifications.tests.webhooks_fake import LoopbackReceiver, Reply
from notifications.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_message_deliver,
    webhook_test_send,
)
from notifications.webhooks_models import WebhookEndpoint, WebhookMessage
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

# What the receiver had as its Delighted API key, pasted as the endpoint's signing key.
OLD_DELIGHTED_KEY = "mpvFJrBgUqVGKRbYCAJ1fNnS2rdDLVsd"


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    with LoopbackReceiver() as fake:
        yield fake


def delighted_receiver(raw_body: bytes, headers: dict[str, str], api_key: str) -> dict:
    """A receiver as Delighted's docs describe it (spec §7): verify, then parse."""
    header = headers["x-delighted-webhook-signature"]
    algo, _, digest = header.partition("=")
    expected = hmac.new(api_key.encode(), raw_body, hashlib.sha256).hexdigest()
    if not (algo == "sha256" and hmac.compare_digest(expected, digest)):
        raise AssertionError("signature does not verify")
    event = json.loads(raw_body)
    return {"event_type": event["event_type"], "event_id": event["event_id"], **event}


def answer(survey, invitation, score, comment, capture):
    with capture(execute=True):
        return response_record(
            invitation=invitation,
            survey=survey,
            score=score,
            comment=comment,
            channel="email",
            language="en",
        )


def v1_get(key: str, path: str) -> dict:
    auth = "Basic " + base64.b64encode(key.encode()).decode()
    got = Client().get(path, HTTP_AUTHORIZATION=auth)
    assert got.status_code == 200, got.content
    return got.json()


def test_a_delighted_receiver_gets_a_real_answers_events(
    company, receiver, django_capture_on_commit_callbacks
):
    issued = webhook_endpoint_create(
        company=company,
        url=receiver.url,
        event_types=["response.created", "response.updated"],
        payload_format="delighted",
        signing_key=OLD_DELIGHTED_KEY,
    )
    assert issued.secret == OLD_DELIGHTED_KEY
    survey = make_survey(company)
    contact = make_contact(company, properties={"plan": "gold"})
    invitation, _token = make_invitation(survey, contact, properties={"order": "A-17"})

    response = answer(survey, invitation, 9, "", django_capture_on_commit_callbacks)
    answer(survey, invitation, 9, "Fast and flawless", django_capture_on_commit_callbacks)

    events = [delighted_receiver(r.body, r.headers, OLD_DELIGHTED_KEY) for r in receiver.requests]
    assert [e["event_type"] for e in events] == [
        "survey_response.created",
        "survey_response.updated",
    ]
    for event in events:
        assert set(event) == {"event_type", "event_id", "event_data"}
        assert re.fullmatch(r"[0-9a-f]{64}", event["event_id"])
    assert events[0]["event_id"] != events[1]["event_id"]
    created, updated = events[0]["event_data"], events[1]["event_data"]
    assert created["id"] == response.public_id
    assert created["score"] == 9
    assert created["comment"] is None
    assert created["person"]["id"] == contact.public_id
    assert created["person"]["email"] == contact.email
    assert created["person_properties"] == {"order": "A-17"}
    assert updated["comment"] == "Fast and flawless"
    # Exactly what the /v1/ API answers for that response, person expanded.
    key = api_key_create(company=company, name="receiver")
    api_key_bind_survey(company=company, api_key=key.api_key, survey=survey)
    assert updated == v1_get(key.key, f"/v1/survey_responses/{response.public_id}?expand[]=person")
    # Only Delighted's header: no Standard Webhooks headers to confuse the receiver.
    assert "webhook-signature" not in receiver.requests[0].headers
    assert receiver.requests[0].headers["content-type"].startswith("application/json")


def test_both_formats_side_by_side(company, receiver, django_capture_on_commit_callbacks):
    standard = webhook_endpoint_create(
        company=company, url=receiver.url + "/standard", event_types=["response.created"]
    )
    delighted = webhook_endpoint_create(
        company=company,
        url=receiver.url + "/delighted",
        event_types=["response.created"],
        payload_format="delighted",
    )
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))

    response = answer(survey, invitation, 3, "Slow", django_capture_on_commit_callbacks)

    by_path = {r.path: r for r in receiver.requests}
    assert set(by_path) == {"/hooks/nps/standard", "/hooks/nps/delighted"}
    ours = Webhook(standard.secret).verify(
        by_path["/hooks/nps/standard"].body, by_path["/hooks/nps/standard"].headers
    )
    assert ours["type"] == "response.created"
    assert ours["data"]["id"] == response.public_id
    assert "x-delighted-webhook-signature" not in by_path["/hooks/nps/standard"].headers
    # The generated secret is used whole, as the receiver used its API key.
    theirs = delighted_receiver(
        by_path["/hooks/nps/delighted"].body,
        by_path["/hooks/nps/delighted"].headers,
        delighted.secret,
    )
    assert theirs["event_type"] == "survey_response.created"
    assert theirs["event_data"]["id"] == response.public_id
    assert theirs["event_data"]["score"] == 3
    # A wrong key does not verify.
    with pytest.raises(AssertionError):
        delighted_receiver(
            by_path["/hooks/nps/delighted"].body,
            by_path["/hooks/nps/delighted"].headers,
            standard.secret,
        )


def test_unsubscribe_created(company, receiver, django_capture_on_commit_callbacks):
    issued = webhook_endpoint_create(
        company=company,
        url=receiver.url,
        event_types=["contact.unsubscribed"],
        payload_format="delighted",
    )
    contact = make_contact(company, email="ann@customer.test", name="Ann Customer")
    with django_capture_on_commit_callbacks(execute=True):
        suppression_add(
            company=company, channel="email", address="ann@customer.test", reason="unsubscribed"
        )
    [request] = receiver.requests
    event = delighted_receiver(request.body, request.headers, issued.secret)
    assert event["event_type"] == "unsubscribe.created"
    data = event["event_data"]
    assert data["person_id"] == contact.public_id
    assert data["email"] == "ann@customer.test"
    assert data["name"] == "Ann Customer"
    assert isinstance(data["unsubscribed_at"], int)


def test_an_anonymous_surveys_response_names_nobody(
    company, receiver, django_capture_on_commit_callbacks
):
    issued = webhook_endpoint_create(
        company=company,
        url=receiver.url,
        event_types=["response.created"],
        payload_format="delighted",
    )
    survey = make_survey(company, anonymous=True)
    contact = make_contact(company, email="employee@acme.test")
    invitation, _token = make_invitation(survey, contact, properties={"employee": "E-1"})

    answer(survey, invitation, 2, "Burnt out", django_capture_on_commit_callbacks)

    [request] = receiver.requests
    data = delighted_receiver(request.body, request.headers, issued.secret)["event_data"]
    assert data["person"] is None
    assert data["person_properties"] is None
    text = request.body.decode()
    assert "employee@acme.test" not in text
    assert "E-1" not in text
    assert contact.public_id not in text


def test_a_retry_sends_the_same_event_id_and_body(
    company, receiver, django_capture_on_commit_callbacks
):
    receiver.reply = Reply(status=503)
    issued = webhook_endpoint_create(
        company=company,
        url=receiver.url,
        event_types=["response.created"],
        payload_format="delighted",
    )
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    answer(survey, invitation, 10, "", django_capture_on_commit_callbacks)
    message = WebhookMessage.objects.for_company(company).get()
    assert message.status == "pending"
    assert message.attempts == 1

    receiver.reply = Reply(status=200)
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=1) == (
        "delivered"
    )
    # A late duplicate of the task sends nothing.
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=1) is None
    first, second = receiver.requests
    assert first.body == second.body
    assert delighted_receiver(second.body, second.headers, issued.secret)["event_id"] == (
        hashlib.sha256(message.public_id.encode()).hexdigest()
    )


def test_a_delighted_endpoint_takes_only_delighteds_events(company):
    with pytest.raises(ValidationError):
        webhook_endpoint_create(
            company=company,
            url="https://hooks.example.com/x",
            event_types=["response.created", "followup.created"],
            payload_format="delighted",
        )
    with pytest.raises(ValidationError):  # a pasted key signs the Delighted way only
        webhook_endpoint_create(
            company=company,
            url="https://hooks.example.com/x",
            event_types=["response.created"],
            signing_key=OLD_DELIGHTED_KEY,
        )


def test_switching_formats(company, receiver, django_capture_on_commit_callbacks):
    issued = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["response.created"]
    )
    endpoint = issued.endpoint
    # A generated secret signs both ways: switching needs no new secret.
    webhook_endpoint_update(
        company=company,
        endpoint=endpoint,
        url=receiver.url,
        event_types=["response.created"],
        payload_format="delighted",
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_test_send(company=company, endpoint=endpoint)
    ping = delighted_receiver(
        receiver.requests[-1].body, receiver.requests[-1].headers, issued.secret
    )
    assert ping["event_type"] == "ping"
    # A pasted key replaces the secret; it cannot sign Standard Webhooks until rotated.
    webhook_endpoint_update(
        company=company,
        endpoint=endpoint,
        url=receiver.url,
        event_types=["response.created"],
        signing_key=OLD_DELIGHTED_KEY,
    )
    with pytest.raises(ValidationError):
        webhook_endpoint_update(
            company=company,
            endpoint=endpoint,
            url=receiver.url,
            event_types=["response.created"],
            payload_format="standard",
        )
    secret = webhook_endpoint_rotate_secret(company=company, endpoint=endpoint)
    endpoint.refresh_from_db()
    webhook_endpoint_update(
        company=company,
        endpoint=endpoint,
        url=receiver.url,
        event_types=["response.created"],
        payload_format="standard",
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_test_send(company=company, endpoint=endpoint)
    last = receiver.requests[-1]
    assert Webhook(secret).verify(last.body, last.headers)["type"] == "ping"


# --- The web app ---------------------------------------------------------------------------------


def test_an_admin_chooses_delighteds_format_in_the_form(company, personas, receiver):
    admin = personas[Role.ADMIN]
    page = admin.client.get(reverse("webhooks:create", args=[company.slug])).content.decode()
    assert 'name="payload_format"' in page
    assert 'value="delighted"' in page
    created = admin.client.post(
        reverse("webhooks:create", args=[company.slug]),
        {
            "url": receiver.url,
            "event_types": ["response.created", "contact.unsubscribed"],
            "payload_format": "delighted",
            "signing_key": OLD_DELIGHTED_KEY,
        },
    )
    assert created.status_code == 200
    endpoint = WebhookEndpoint.objects.for_company(company).get()
    assert endpoint.payload_format == "delighted"
    assert "X-Delighted-Webhook-Signature" in created.content.decode()
    edit = reverse("webhooks:edit", args=[company.slug, endpoint.public_id])
    refused = admin.client.post(
        edit,
        {"url": receiver.url, "event_types": ["followup.created"], "payload_format": "delighted"},
    )
    assert refused.status_code == 200
    assert "Delighted" in refused.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["response.created", "contact.unsubscribed"]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_create_an_endpoint(company, personas, role):
    refused = personas[role].client.post(
        reverse("webhooks:create", args=[company.slug]),
        {
            "url": "https://hooks.example.com/x",
            "event_types": ["response.created"],
            "payload_format": "delighted",
        },
    )
    assert refused.status_code == 403
    assert not WebhookEndpoint.objects.for_company(company).exists()


def test_an_outsider_gets_404(company, outsider):
    page = outsider.client.get(reverse("webhooks:create", args=[company.slug]))
    assert page.status_code == 404
