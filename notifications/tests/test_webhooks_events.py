"""The events other apps emit: response.created/updated, followup.created/updated,
contact.unsubscribed, alert.triggered. Payloads carry public ids only, never an anonymous
respondent; only the emitting company's subscribed endpoints get them."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from companies.models import Membership, Role
from conftest import add_member
from notifications.services import suppression_add
from notifications.tests.webhooks_fake import LoopbackReceiver
from notifications.webhooks import webhook_endpoint_create
from notifications.webhooks_models import WebhookEventType, WebhookMessage
from responses.alerts import alert_rule_save
from responses.followups import followup_assign, followup_set_status
from responses.models import AlertRule, Followup
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

ALL_EVENTS = list(WebhookEventType.values)


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    with LoopbackReceiver() as fake:
        yield fake


def received(receiver, secret):
    """The verified payloads, in arrival order."""
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.requests]


def of_type(payloads, event_type):
    return [p for p in payloads if p["type"] == event_type]


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


def test_response_created_then_updated(company, receiver, django_capture_on_commit_callbacks):
    issued = webhook_endpoint_create(
        company=company,
        url=receiver.url,
        event_types=["response.created", "response.updated"],
    )
    survey = make_survey(company)
    contact = make_contact(company, properties={"plan": "gold"})
    invitation, _token = make_invitation(survey, contact, properties={"order": "A-17"})

    response = answer(survey, invitation, 9, "Great coffee", django_capture_on_commit_callbacks)
    answer(survey, invitation, 4, "Cold coffee", django_capture_on_commit_callbacks)

    payloads = received(receiver, issued.secret)
    assert [p["type"] for p in payloads] == ["response.created", "response.updated"]
    created = payloads[0]["data"]
    assert created["id"] == response.public_id
    assert created["score"] == 9
    assert created["category"] == "promoter"
    assert created["comment"] == "Great coffee"
    assert created["survey"] == {"id": survey.public_id, "name": survey.name, "anonymous": False}
    assert created["contact"]["id"] == contact.public_id
    assert created["contact"]["email"] == contact.email
    assert created["contact"]["properties"] == {"plan": "gold"}
    assert created["properties"] == {"order": "A-17"}
    assert payloads[1]["data"]["score"] == 4
    assert payloads[1]["data"]["category"] == "detractor"
    # Public ids only: no integer primary key anywhere in the body.
    body = receiver.requests[0].body.decode()
    assert f'"id":{response.pk}' not in body
    assert str(contact.pk) not in json.dumps(created["contact"])


def test_an_anonymous_surveys_response_never_names_the_respondent(
    company, receiver, django_capture_on_commit_callbacks
):
    issued = webhook_endpoint_create(company=company, url=receiver.url, event_types=ALL_EVENTS)
    survey = make_survey(company, anonymous=True)
    contact = make_contact(company, email="employee@acme.test", properties={"team": "ops"})
    invitation, _token = make_invitation(survey, contact, properties={"employee": "E-1"})

    answer(survey, invitation, 2, "Burnt out", django_capture_on_commit_callbacks)

    payloads = received(receiver, issued.secret)
    assert {p["type"] for p in payloads} >= {"response.created"}
    for request in receiver.requests:
        text = request.body.decode()
        assert "employee@acme.test" not in text
        assert contact.public_id not in text
        assert "E-1" not in text
        assert "ops" not in text
    [created] = of_type(payloads, "response.created")
    assert "contact" not in created["data"]
    assert "properties" not in created["data"]
    assert created["data"]["comment"] == "Burnt out"


def test_followup_created_and_updated(company, receiver, django_capture_on_commit_callbacks):
    issued = webhook_endpoint_create(
        company=company,
        url=receiver.url,
        event_types=["followup.created", "followup.updated"],
    )
    agent = add_member(company, "agent@acme.test", Role.AGENT)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    answer(survey, invitation, 3, "Slow", django_capture_on_commit_callbacks)  # default rule
    followup = Followup.objects.for_company(company).get()
    membership = Membership.objects.for_company(company).get(user=agent)
    owner = Membership.objects.for_company(company).get(role=Role.OWNER)

    with django_capture_on_commit_callbacks(execute=True):
        followup_assign(company=company, followup=followup, assignee=owner, actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        followup_set_status(
            company=company,
            followup=followup,
            status="resolved",
            resolution="contacted",
            actor=agent,
        )

    payloads = received(receiver, issued.secret)
    assert [p["type"] for p in payloads] == [
        "followup.created",
        "followup.updated",
        "followup.updated",
    ]
    created = payloads[0]["data"]
    assert created["id"] == followup.public_id
    assert created["status"] == "new"
    assert created["assignee"]["id"] == membership.public_id  # round-robin to the agent
    assert created["response"]["score"] == 3
    assert payloads[1]["data"]["assignee"] == {"id": owner.public_id, "email": "owner@acme.test"}
    assert payloads[2]["data"]["status"] == "resolved"
    assert payloads[2]["data"]["resolution"] == "contacted"


def test_contact_unsubscribed(company, other_company, receiver, django_capture_on_commit_callbacks):
    issued = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["contact.unsubscribed"]
    )
    webhook_endpoint_create(
        company=other_company, url=receiver.url + "?theirs", event_types=ALL_EVENTS
    )
    contact = make_contact(company, email="ann@customer.test")
    make_contact(other_company, email="ann@customer.test")

    with django_capture_on_commit_callbacks(execute=True):
        suppression_add(
            company=company, channel="email", address="Ann@Customer.test", reason="unsubscribed"
        )
        # A bounce is not an unsubscribe.
        suppression_add(
            company=company, channel="email", address="bob@customer.test", reason="bounced"
        )

    [payload] = received(receiver, issued.secret)
    assert payload["type"] == "contact.unsubscribed"
    assert payload["data"]["contact"]["id"] == contact.public_id
    assert payload["data"]["contact"]["email"] == "ann@customer.test"
    assert payload["data"]["reason"] == "unsubscribed"
    assert not WebhookMessage.objects.for_company(other_company).exists()


def test_alert_triggered_once_per_rule_and_response(
    company, receiver, django_capture_on_commit_callbacks
):
    issued = webhook_endpoint_create(
        company=company, url=receiver.url, event_types=["alert.triggered"]
    )
    rule = AlertRule.objects.for_company(company).get(is_default=True)
    alert_rule_save(company=company, rule=rule, notify_webhook=True)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))

    answer(survey, invitation, 2, "Bad", django_capture_on_commit_callbacks)
    answer(survey, invitation, 1, "Worse", django_capture_on_commit_callbacks)  # an edit

    [payload] = received(receiver, issued.secret)
    assert payload["type"] == "alert.triggered"
    assert payload["data"]["rule"] == {"id": rule.public_id, "name": rule.name}
    followup = Followup.objects.for_company(company).get()
    assert payload["data"]["followup"] == {"id": followup.public_id}
    assert payload["data"]["response"]["score"] == 2
