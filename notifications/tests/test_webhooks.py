"""Outbound webhooks: signing (checked with the standardwebhooks package), fan-out and tenant
isolation, the claim, the retry schedule with frozen time, no retry on 4xx, the automatic
disabling with its one email. The receiver is a real loopback server."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from companies.credentials import secret_decrypt
from companies.models import Role
from conftest import add_member
from notifications.tasks import webhooks_deliver_due
from notifications.tests.webhooks_fake import LoopbackReceiver, Reply
from notifications.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    STALE_AFTER,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_set_enabled,
    webhook_event_emit,
    webhook_message_deliver,
)
from notifications.webhooks_models import (
    DisabledReason,
    MessageKind,
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

pytestmark = pytest.mark.django_db

EVENT = "response.created"
DATA = {"id": "r_public", "score": 3, "comment": "Slow service"}


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    with LoopbackReceiver() as fake:
        yield fake


def make_endpoint(company, url, events=(EVENT,)):
    return webhook_endpoint_create(company=company, url=url, event_types=list(events))


def emit(company, django_capture_on_commit_callbacks, event=EVENT, data=DATA):
    """Emit and run what is queued on commit (the first attempt, inline in tests)."""
    with django_capture_on_commit_callbacks(execute=True):
        return webhook_event_emit(company=company, event_type=event, data=data)


def message_of(company, message):
    return WebhookMessage.objects.for_company(company).get(pk=message.pk)


def sweep(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return webhooks_deliver_due()


# --- Endpoints and signing ---------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_encrypted(company):
    issued = make_endpoint(company, "http://127.0.0.1:9/x")
    assert issued.secret.startswith("whsec_")
    stored = WebhookEndpoint.objects.for_company(company).get(pk=issued.endpoint.pk)
    assert issued.secret not in stored.secret_encrypted
    assert secret_decrypt(stored.secret_encrypted) == issued.secret


def test_delivery_is_signed_per_standard_webhooks(
    company, receiver, django_capture_on_commit_callbacks
):
    issued = make_endpoint(company, receiver.url)
    [message] = emit(company, django_capture_on_commit_callbacks)
    [request] = receiver.requests
    payload = Webhook(issued.secret).verify(request.body, request.headers)
    assert payload["type"] == EVENT
    assert payload["data"] == DATA
    assert "timestamp" in payload
    assert request.headers["webhook-id"] == message.public_id
    assert request.headers["webhook-signature"].startswith("v1,")
    # Another secret does not verify it: the signature is really checked.
    other = make_endpoint(company, receiver.url)
    with pytest.raises(WebhookVerificationError):
        Webhook(other.secret).verify(request.body, request.headers)
    message = message_of(company, message)
    assert message.status == MessageStatus.DELIVERED
    [attempt] = WebhookAttempt.objects.for_company(company).filter(message=message)
    assert attempt.status_code == 200
    assert attempt.succeeded
    assert attempt.response_excerpt == "ok"


def test_a_rotated_secret_signs_from_then_on(company, receiver, django_capture_on_commit_callbacks):
    issued = make_endpoint(company, receiver.url)
    new_secret = webhook_endpoint_rotate_secret(company=company, endpoint=issued.endpoint)
    emit(company, django_capture_on_commit_callbacks)
    [request] = receiver.requests
    Webhook(new_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(issued.secret).verify(request.body, request.headers)


# --- Fan-out -----------------------------------------------------------------------------------


def test_only_that_companys_subscribed_enabled_endpoints_get_the_event(
    company, other_company, receiver, django_capture_on_commit_callbacks
):
    ours = make_endpoint(company, receiver.url + "?ours")
    make_endpoint(company, receiver.url + "?unsubscribed", events=["followup.created"])
    disabled = make_endpoint(company, receiver.url + "?disabled")
    webhook_endpoint_set_enabled(company=company, endpoint=disabled.endpoint, enabled=False)
    make_endpoint(other_company, receiver.url + "?theirs")

    messages = emit(company, django_capture_on_commit_callbacks)

    assert [m.endpoint_id for m in messages] == [ours.endpoint.pk]
    assert [r.path for r in receiver.requests] == ["/hooks/nps?ours"]
    assert not WebhookMessage.objects.for_company(other_company).exists()


def test_nothing_is_sent_if_the_emitting_transaction_rolls_back(
    company, receiver, django_capture_on_commit_callbacks
):
    from django.db import transaction

    make_endpoint(company, receiver.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                webhook_event_emit(company=company, event_type=EVENT, data=DATA)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert callbacks == []
    assert receiver.requests == []
    assert not WebhookMessage.objects.for_company(company).exists()


def test_unknown_event_types_are_a_programming_error(company):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        webhook_event_emit(company=company, event_type="response.deleted", data={})


# --- The claim ---------------------------------------------------------------------------------


def test_an_attempt_is_sent_once_however_often_its_task_runs(company, receiver):
    make_endpoint(company, receiver.url)
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)  # not run
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=0) == (
        MessageStatus.DELIVERED
    )
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=0) is None
    assert len(receiver.requests) == 1
    assert message_of(company, message).attempts == 1


def test_a_late_task_of_an_earlier_attempt_sends_nothing(company, receiver):
    receiver.reply = Reply(status=503)
    make_endpoint(company, receiver.url)
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)
    webhook_message_deliver(company=company, message_id=message.pk, attempt=0)
    assert message_of(company, message).status == MessageStatus.PENDING
    # The same task delivered again after the attempt failed: not the attempt that is due.
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=0) is None
    assert len(receiver.requests) == 1


# --- Retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "retried"),
    [
        (Reply(status=400), False),
        (Reply(status=401), False),
        (Reply(status=404), False),
        (Reply(status=422), False),
        (Reply(status=408), True),
        (Reply(status=429), True),
        (Reply(status=500), True),
        (Reply(status=503), True),
        (Reply(status=301, headers={"Location": "/x"}), True),
    ],
    ids=lambda v: str(getattr(v, "status", v)),
)
def test_which_failures_are_retried(company, receiver, reply, retried):
    receiver.reply = reply
    make_endpoint(company, receiver.url)
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)
    status = webhook_message_deliver(company=company, message_id=message.pk, attempt=0)
    row = message_of(company, message)
    if retried:
        assert status == MessageStatus.PENDING
        assert row.next_attempt_at is not None
        assert f"HTTP {reply.status}" in row.last_error
    else:
        assert status == MessageStatus.FAILED
        assert row.next_attempt_at is None


def test_a_timeout_is_retried(company, receiver, settings):
    settings.WEBHOOK_READ_TIMEOUT = 0.2
    receiver.reply = Reply(delay=0.6)
    make_endpoint(company, receiver.url)
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=0) == (
        MessageStatus.PENDING
    )
    attempt = WebhookAttempt.objects.for_company(company).get(message_id=message.pk)
    assert attempt.status_code is None
    assert attempt.error == "timeout"


def test_a_refused_address_is_not_retried(company, settings):
    endpoint = make_endpoint(company, "http://127.0.0.1:9/x").endpoint
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=0) == (
        MessageStatus.FAILED
    )
    assert "private" in message_of(company, message).last_error
    assert endpoint.pk


def test_the_retry_schedule_with_frozen_time(company, receiver, django_capture_on_commit_callbacks):
    """5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; each retry only once due; then failed."""
    receiver.reply = Reply(status=500)
    make_endpoint(company, receiver.url)
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        [message] = emit(company, django_capture_on_commit_callbacks)
        assert len(receiver.requests) == 1
        for number, delay in enumerate(RETRY_DELAYS, start=2):
            row = message_of(company, message)
            assert row.status == MessageStatus.PENDING
            assert row.next_attempt_at == timezone.now() + delay
            clock.shift(delay - timedelta(seconds=1))
            assert sweep(django_capture_on_commit_callbacks) == 0  # not due yet
            assert len(receiver.requests) == number - 1
            clock.shift(timedelta(seconds=1))
            assert sweep(django_capture_on_commit_callbacks) == 1
            assert len(receiver.requests) == number
        row = message_of(company, message)
        assert row.status == MessageStatus.FAILED
        assert row.attempts == MAX_ATTEMPTS == 8
        assert sum(RETRY_DELAYS, timedelta()) > timedelta(hours=24)
        clock.shift(timedelta(days=2))
        assert sweep(django_capture_on_commit_callbacks) == 0
    assert len(receiver.requests) == MAX_ATTEMPTS
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {message.public_id}  # the same id on every retry: receivers dedupe


def test_the_sweep_reenqueues_a_lost_first_attempt(
    company, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(company, receiver.url)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)  # lost
        assert sweep(django_capture_on_commit_callbacks) == 0  # leased to its own task
        clock.shift(timedelta(minutes=3))
        assert sweep(django_capture_on_commit_callbacks) == 1
    assert message_of(company, message).status == MessageStatus.DELIVERED
    assert len(receiver.requests) == 1


def test_a_webhook_left_sending_by_a_dead_worker_is_retried(
    company, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(company, receiver.url)
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)
    WebhookMessage.objects.for_company(company).filter(pk=message.pk).update(
        status=MessageStatus.SENDING, attempts=1, claimed_at=timezone.now()
    )
    assert sweep(django_capture_on_commit_callbacks) == 0
    with time_machine.travel(timezone.now() + STALE_AFTER + timedelta(seconds=1)):
        # Back to pending, due now, and enqueued by the same sweep.
        assert sweep(django_capture_on_commit_callbacks) == 1
    row = message_of(company, message)
    assert row.status == MessageStatus.DELIVERED
    assert row.attempts == 2


# --- Disabling ---------------------------------------------------------------------------------


def _admin_emails():
    return sorted(to for m in mail.outbox for to in m.to if "disabled" in m.subject.lower())


def test_an_endpoint_failing_for_a_day_is_disabled_with_one_email(
    company, receiver, django_capture_on_commit_callbacks
):
    add_member(company, "admin@acme.test", Role.ADMIN)
    add_member(company, "agent@acme.test", Role.AGENT)
    receiver.reply = Reply(status=503)
    endpoint = make_endpoint(company, receiver.url).endpoint
    with time_machine.travel(timezone.now(), tick=False) as clock:
        [first] = emit(company, django_capture_on_commit_callbacks)
        clock.shift(timedelta(hours=1))
        [second] = emit(company, django_capture_on_commit_callbacks)
        for _ in range(2 * MAX_ATTEMPTS):
            clock.shift(timedelta(hours=10))
            sweep(django_capture_on_commit_callbacks)
        assert message_of(company, first).status == MessageStatus.FAILED
        assert message_of(company, second).status == MessageStatus.FAILED
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == DisabledReason.FAILING
    assert _admin_emails() == ["admin@acme.test", "owner@acme.test"]  # once, admins only
    # Disabled: new events go nowhere.
    assert emit(company, django_capture_on_commit_callbacks) == []


def test_a_success_in_between_keeps_the_endpoint(
    company, receiver, django_capture_on_commit_callbacks
):
    receiver.reply = Reply(status=400)
    endpoint = make_endpoint(company, receiver.url).endpoint
    with time_machine.travel(timezone.now(), tick=False) as clock:
        emit(company, django_capture_on_commit_callbacks)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None
        clock.shift(timedelta(hours=20))
        receiver.reply = Reply(status=204)
        emit(company, django_capture_on_commit_callbacks)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None
        receiver.reply = Reply(status=400)
        clock.shift(timedelta(hours=20))
        emit(company, django_capture_on_commit_callbacks)  # failing for 0 h, not 40 h
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert _admin_emails() == []


def test_410_gone_disables_at_once(company, receiver, django_capture_on_commit_callbacks):
    receiver.reply = Reply(status=410)
    endpoint = make_endpoint(company, receiver.url).endpoint
    [message] = emit(company, django_capture_on_commit_callbacks)
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == DisabledReason.GONE
    assert message_of(company, message).status == MessageStatus.FAILED
    assert _admin_emails() == ["owner@acme.test"]


def test_enabling_again_starts_the_clock_again(company, receiver):
    endpoint = make_endpoint(company, receiver.url).endpoint
    WebhookEndpoint.objects.for_company(company).filter(pk=endpoint.pk).update(
        enabled=False,
        disabled_reason=DisabledReason.FAILING,
        failing_since=timezone.now() - timedelta(days=3),
    )
    webhook_endpoint_set_enabled(company=company, endpoint=endpoint, enabled=True)
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.failing_since is None
    assert endpoint.disabled_reason == DisabledReason.NONE


def test_messages_of_a_disabled_endpoint_are_not_sent(company, receiver):
    endpoint = make_endpoint(company, receiver.url).endpoint
    [message] = webhook_event_emit(company=company, event_type=EVENT, data=DATA)
    webhook_endpoint_set_enabled(company=company, endpoint=endpoint, enabled=False)
    assert webhook_message_deliver(company=company, message_id=message.pk, attempt=0) == (
        MessageStatus.FAILED
    )
    assert receiver.requests == []
    assert message_of(company, message).kind == MessageKind.WEBHOOK


def test_the_log_keeps_finished_messages_for_thirty_days(
    company, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(company, receiver.url)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        [old] = emit(company, django_capture_on_commit_callbacks)
        clock.shift(timedelta(days=29))
        [recent] = emit(company, django_capture_on_commit_callbacks)
        sweep(django_capture_on_commit_callbacks)
        assert WebhookMessage.objects.for_company(company).count() == 2
        clock.shift(timedelta(days=2))
        sweep(django_capture_on_commit_callbacks)
    assert list(WebhookMessage.objects.for_company(company).values_list("pk", flat=True)) == [
        recent.pk
    ]
    assert not WebhookAttempt.objects.for_company(company).filter(message_id=old.pk).exists()
