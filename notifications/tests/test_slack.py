"""Slack posts of alert rules: one per firing (the alert ledger), retried on transient
failure, never twice; content without an anonymous respondent; the URL checked in the rule
form by the hardened client's rules."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications import http_client
from notifications.slack import escape, slack_body
from notifications.tasks import webhooks_deliver_due
from notifications.tests.webhooks_fake import LoopbackReceiver, Reply
from notifications.webhooks import STALE_AFTER
from notifications.webhooks_models import MessageKind, MessageStatus, WebhookMessage
from responses.alerts import alert_rule_save, alerts_evaluate
from responses.followups_forms import AlertRuleForm
from responses.models import AlertFiring, AlertRule, Followup
from responses.services import response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    with LoopbackReceiver() as fake:
        yield fake


def slack_rule(company, url):
    rule = AlertRule.objects.for_company(company).get(is_default=True)
    return alert_rule_save(company=company, rule=rule, notify_slack=True, slack_webhook_url=url)


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


def slack_messages(company):
    return list(WebhookMessage.objects.for_company(company).filter(kind=MessageKind.SLACK))


def test_one_post_per_firing_with_the_alert(company, receiver, django_capture_on_commit_callbacks):
    slack_rule(company, receiver.url)
    survey = make_survey(company, name="Coffee shop")
    contact = make_contact(company, email="ann@customer.test", name="Ann Customer")
    invitation, _token = make_invitation(survey, contact)

    response = answer(
        survey, invitation, 3, "Cold <coffee> & slow", django_capture_on_commit_callbacks
    )
    answer(survey, invitation, 2, "Even colder", django_capture_on_commit_callbacks)  # an edit
    with django_capture_on_commit_callbacks(execute=True):
        alerts_evaluate(company=company, response_id=response.pk)  # a redelivered task

    assert AlertFiring.objects.for_company(company).count() == 1
    [message] = slack_messages(company)
    assert message.status == MessageStatus.DELIVERED
    [request] = receiver.requests
    assert "webhook-signature" not in request.headers  # Slack posts are not signed
    body = json.loads(request.body)
    text = json.dumps(body, ensure_ascii=False)
    assert "*Score:* 3" in text
    assert "Detractor" in text
    assert "Coffee shop" in text
    assert "Ann Customer" in text
    assert "&lt;coffee&gt; &amp; slow" in text  # Slack control characters escaped
    followup = Followup.objects.for_company(company).get()
    button = body["blocks"][-1]["elements"][0]
    assert button["url"].endswith(f"/inbox/f/{followup.public_id}/")
    assert body["text"].startswith("Alert: score 3")


def test_an_anonymous_respondent_is_never_named(
    company, receiver, django_capture_on_commit_callbacks
):
    slack_rule(company, receiver.url)
    survey = make_survey(company, anonymous=True)
    contact = make_contact(company, email="employee@acme.test", name="Eve Employee")
    invitation, _token = make_invitation(survey, contact)
    answer(survey, invitation, 1, "Tired", django_capture_on_commit_callbacks)
    [request] = receiver.requests
    text = request.body.decode()
    assert "Tired" in text
    assert "Eve Employee" not in text
    assert "employee@acme.test" not in text
    assert "Contact" not in text


def test_a_failed_post_is_retried_and_then_posted_once(
    company, receiver, django_capture_on_commit_callbacks
):
    slack_rule(company, receiver.url)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    receiver.reply = Reply(status=500, body=b"internal_error")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        answer(survey, invitation, 0, "", django_capture_on_commit_callbacks)
        [message] = slack_messages(company)
        assert message.status == MessageStatus.PENDING
        assert message.last_error == "HTTP 500"
        receiver.reply = Reply(status=200, body=b"ok")
        clock.shift(timedelta(seconds=6))
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                webhooks_deliver_due()
    [message] = slack_messages(company)
    assert message.status == MessageStatus.DELIVERED
    assert len(receiver.requests) == 2
    assert [a.status_code for a in message.attempt_log.order_by("number")] == [500, 200]


def test_a_post_left_sending_by_a_dead_worker_is_not_posted_again(
    company, receiver, django_capture_on_commit_callbacks
):
    slack_rule(company, receiver.url)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    with django_capture_on_commit_callbacks(execute=False):  # the worker never runs
        response_record(
            invitation=invitation, survey=survey, score=2, channel="email", language="en"
        )
    response = survey.responses.get()
    alerts_evaluate(company=company, response_id=response.pk)
    [message] = slack_messages(company)
    WebhookMessage.objects.for_company(company).filter(pk=message.pk).update(
        status=MessageStatus.SENDING, attempts=1, claimed_at=timezone.now()
    )
    later = timezone.now() + STALE_AFTER + timedelta(seconds=1)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        webhooks_deliver_due()
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "duplicate" in message.last_error
    assert receiver.requests == []


def test_slack_body_shape():
    body = slack_body(
        title="T",
        fields=[("Score", "3")],
        quote="x" * 900,
        link_url="https://app.test/f/1",
        link_text="Open",
    )
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "actions"]
    assert len(body["blocks"][2]["text"]["text"]) <= 502
    assert escape("<!channel>") == "&lt;!channel&gt;"


# --- The rule form -------------------------------------------------------------------------------


def rule_form(company, url):
    return AlertRuleForm(
        {
            "name": "Slack",
            "enabled": "on",
            "notify_slack": "on",
            "slack_webhook_url": url,
            "create_followup": "on",
        },
        company=company,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T/B/x",  # not https
        "https://127.0.0.1/services/T/B/x",
        "https://[::ffff:169.254.169.254]/x",
        "https://10.0.0.8/x",
    ],
)
def test_the_rule_form_refuses_unsafe_slack_urls(company, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    form = rule_form(company, url)
    assert not form.is_valid()
    assert "slack_webhook_url" in form.errors


def test_the_rule_form_accepts_a_slack_url(company, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    monkeypatch.setattr(http_client, "_getaddrinfo", lambda host, port: ["54.192.1.10"])
    form = rule_form(company, "https://hooks.slack.com/services/T000/B000/XXXX")
    assert form.is_valid(), form.errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_post_to_slack_exactly_once(settings):
    """Four submits of the same invitation race, each committing and evaluating the rules in
    its own connection (eager tasks, real commits): one firing, one Slack post."""
    import threading

    from django.db import close_old_connections

    from conftest import make_company

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    company = make_company("Race Cafe", "owner@race.test")
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    with LoopbackReceiver() as receiver:
        slack_rule(company, receiver.url)

        def submit(score: int) -> None:
            try:
                barrier.wait()
                response_record(
                    invitation=invitation,
                    survey=survey,
                    score=score,
                    comment=f"comment {score}",
                    channel="email",
                    language="en",
                )
            except BaseException as exc:
                errors.append(exc)
            finally:
                close_old_connections()

        threads = [threading.Thread(target=submit, args=(s,)) for s in (0, 2, 4, 6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert AlertFiring.objects.for_company(company).count() == 1
    [message] = slack_messages(company)
    assert message.status == MessageStatus.DELIVERED
    assert len(receiver.requests) == 1
