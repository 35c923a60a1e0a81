"""sms_send through the real twilio library; only its HTTP client is fake (twilio_fake)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from companies.models import Company
from notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    Suppression,
    SuppressionReason,
)
from notifications.services import suppression_add
from notifications.signals import message_status_changed
from notifications.sms import OutgoingSms, sms_send
from notifications.sms_segments import GSM7, UCS2, gsm7_friendly, sms_segments
from notifications.tests.twilio_fake import SERVICE_SID, sms_ready, twilio_fake
from notifications.transport import TransientSendError

pytestmark = pytest.mark.django_db

ANN = "+77011234567"
BOB = "+77017654321"


def _message(to: str = ANN, body: str = "How likely? Reply 0-10", **kw: Any) -> OutgoingSms:
    return OutgoingSms(to=to, body=body, metadata={"invitation": "inv-1"}, **kw)


def test_each_message_is_one_request_with_to_from_body_and_its_status_callback(
    company: Company,
) -> None:
    sms_ready(company, sender="+14155550100")
    with twilio_fake() as fake:
        rows = sms_send(company=company, messages=[_message(ANN), _message(BOB, body="Hi Bob")])
    assert [r["To"] for r in fake.requests] == [ANN, BOB]
    assert [r["From"] for r in fake.requests] == ["+14155550100"] * 2
    assert "MessagingServiceSid" not in fake.requests[0]
    assert [r["Body"] for r in fake.requests] == ["How likely? Reply 0-10", "Hi Bob"]
    for row, form in zip(rows, fake.requests, strict=True):
        callback = urlsplit(str(form["StatusCallback"]))
        assert (callback.scheme, callback.netloc) == ("https", "nps.example.com")
        assert callback.path == "/twilio/status/"
        assert parse_qs(callback.query) == {"d": [row.public_id]}
        row.refresh_from_db()
        assert row.status == DeliveryStatus.SENT
        assert row.provider_message_id.startswith("SM")
        assert row.channel == Channel.SMS
        assert row.to in (ANN, BOB)
        assert row.attempts == 1
        assert row.sent_at is not None
        assert row.metadata == {"invitation": "inv-1"}


def test_messaging_service_goes_as_messaging_service_sid_without_from(company: Company) -> None:
    sms_ready(company, sender=SERVICE_SID)
    with twilio_fake() as fake:
        sms_send(company=company, messages=[_message()])
    assert fake.requests[0]["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in fake.requests[0]
    assert fake.requests[0]["Body"] == "How likely? Reply 0-10"


def test_whatsapp_addresses_and_content_template(company: Company) -> None:
    sms_ready(company)
    company.whatsapp_sender = "+14155238886"
    company.save(update_fields=["whatsapp_sender"])
    with twilio_fake() as fake:
        rows = sms_send(
            company=company,
            messages=[
                _message(
                    channel=Channel.WHATSAPP,
                    content_sid="HX" + "0" * 32,
                    content_variables={"1": "Ann", "2": "https://x/r/t/"},
                )
            ],
        )
    form = fake.requests[0]
    assert form["To"] == f"whatsapp:{ANN}"
    assert form["From"] == "whatsapp:+14155238886"
    assert form["ContentSid"] == "HX" + "0" * 32
    assert json.loads(str(form["ContentVariables"])) == {"1": "Ann", "2": "https://x/r/t/"}
    assert "Body" not in form
    assert rows[0].channel == Channel.WHATSAPP
    assert rows[0].to == ANN


def test_ledger_rows_exist_before_the_provider_is_called(company: Company) -> None:
    sms_ready(company)
    seen: list[str] = []

    def reply(form: dict[str, Any]) -> tuple[int, Any]:
        row = Delivery.objects.for_company(company).get(to=form["To"])
        seen.append(row.status)
        return 201, {"sid": "SM1", "status": "queued"}

    with twilio_fake(reply):
        sms_send(company=company, messages=[_message()])
    assert seen == [DeliveryStatus.SENDING]


def test_suppressed_invalid_and_senderless_numbers_are_never_sent(
    company: Company, other_company: Company
) -> None:
    sms_ready(company)
    suppression_add(
        company=company, channel=Channel.SMS, address=BOB, reason=SuppressionReason.STOPPED
    )
    with twilio_fake() as fake:
        rows = sms_send(
            company=company, messages=[_message(ANN), _message(BOB), _message("+7 123")]
        )
        no_sender = sms_send(company=other_company, messages=[_message(ANN)])
    assert fake.recipients == [ANN]
    assert [r.status for r in rows] == ["sent", "suppressed", "failed"]
    assert rows[2].error == "invalid phone number"
    assert no_sender[0].status == DeliveryStatus.FAILED
    assert "no sms sender" in no_sender[0].error


def test_twilio_errors_are_mapped(company: Company) -> None:
    """Invalid number → failed; 21610 → suppressed for the company; other 4xx → failed;
    the messages after a permanent error still go."""
    sms_ready(company)
    third = "+77019998877"
    with twilio_fake() as fake:
        fake.fail_for = {ANN: (400, 21211), BOB: (400, 21610), third: (400, 21606)}
        rows = sms_send(
            company=company,
            messages=[_message(ANN), _message(BOB), _message(third), _message("+77015554433")],
        )
    assert [r.status for r in rows] == ["failed", "suppressed", "failed", "sent"]
    assert "invalid phone number" in rows[0].error
    assert "21606" in rows[2].error
    stopped = Suppression.objects.for_company(company).get()
    assert (stopped.address, stopped.reason) == (BOB, SuppressionReason.STOPPED)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_transient_and_a_retry_sends_each_once(
    company: Company, status: int
) -> None:
    sms_ready(company)
    with twilio_fake() as fake:
        fake.fail_for = {BOB: (status, 20429 if status == 429 else 20500)}
        with pytest.raises(TransientSendError) as caught:
            sms_send(company=company, messages=[_message(ANN), _message(BOB)])
        first, second = caught.value.deliveries
        assert first.status == DeliveryStatus.SENT
        assert second.status == DeliveryStatus.QUEUED
        second.refresh_from_db()
        assert second.status == DeliveryStatus.QUEUED
        assert second.attempts == 1
        fake.fail_for = {}
        rows = sms_send(
            company=company,
            messages=[_message(ANN, delivery_id=first.pk), _message(BOB, delivery_id=second.pk)],
        )
    assert fake.recipients == [ANN, BOB, BOB]  # Ann once, Bob's retry once
    assert [r.pk for r in rows] == [first.pk, second.pk]
    assert [r.status for r in rows] == ["sent", "sent"]
    assert Delivery.objects.for_company(company).count() == 2


def test_a_row_left_sending_is_never_sent_again(company: Company) -> None:
    sms_ready(company)
    with twilio_fake() as fake:
        row = sms_send(company=company, messages=[_message()])[0]
        Delivery.objects.for_company(company).filter(pk=row.pk).update(status="sending")
        again = sms_send(company=company, messages=[_message(delivery_id=row.pk)])
    assert len(fake.requests) == 1
    assert again[0].status == DeliveryStatus.SENDING


def test_the_sender_rate_limit_is_shared_and_a_long_wait_is_transient(company: Company) -> None:
    """At 1 message per second for the sender, the second message in the same second cannot
    get a token within a zero timeout: it goes back to queued for a retry."""
    sms_ready(company, sender="+14155550199", rate=1.0)
    with (
        twilio_fake() as fake,
        override_settings(SMS_RATE_TIMEOUT=0.0),
        pytest.raises(TransientSendError) as caught,
    ):
        sms_send(company=company, messages=[_message(ANN), _message(BOB)])
    assert fake.recipients == [ANN]
    assert [d.status for d in caught.value.deliveries] == ["sent", "queued"]


def test_status_changes_are_announced(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    sms_ready(company)
    seen: list[tuple[str, dict[str, str]]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append((kwargs["status"], kwargs["metadata"]))

    message_status_changed.connect(receiver)
    try:
        with twilio_fake() as fake, django_capture_on_commit_callbacks(execute=True):
            fake.fail_for = {BOB: (400, 21211)}
            sms_send(company=company, messages=[_message(ANN), _message(BOB)])
    finally:
        message_status_changed.disconnect(receiver)
    assert seen == [("sent", {"invitation": "inv-1"}), ("failed", {"invitation": "inv-1"})]


@override_settings(SMS_PROVIDER="outbox")
def test_the_development_outbox_keeps_sms_instead(company: Company) -> None:
    rows = sms_send(company=company, messages=[_message()])
    stored = OutboxMessage.objects.get()
    assert stored.channel == "sms"
    assert stored.to == ANN
    assert stored.text == "How likely? Reply 0-10"
    assert stored.headers["From"] == f"dev:{company.slug}"
    assert stored.headers["StatusCallback"].endswith(f"?d={rows[0].public_id}")
    assert rows[0].status == DeliveryStatus.SENT
    assert rows[0].provider_message_id == f"SM{stored.id}"


# --- Segments ---------------------------------------------------------------------------------


def test_segments_and_encoding() -> None:
    assert sms_segments("a" * 160) == sms_segments("a" * 160)
    assert (sms_segments("a" * 160).encoding, sms_segments("a" * 160).segments) == (GSM7, 1)
    assert sms_segments("a" * 161).segments == 2
    assert sms_segments("a" * 306).segments == 2
    assert sms_segments("a" * 307).segments == 3
    assert sms_segments("{" * 80).length == 160  # extension characters count twice
    russian = sms_segments("Привет" * 12)  # 72 characters
    assert (russian.encoding, russian.segments) == (UCS2, 2)
    assert sms_segments("Я" * 70).segments == 1
    curly = sms_segments("It\u2019s great")
    assert curly.encoding == UCS2
    assert curly.non_gsm == ("\u2019",)
    assert gsm7_friendly("It\u2019s \u201cgreat\u201d \u2013 ok\u2026") == 'It\'s "great" - ok...'
    assert gsm7_friendly("Это \u2014 тест") == "Это \u2014 тест"  # UCS-2 anyway: untouched


def test_a_company_with_its_own_twilio_account_sends_through_it(company: Company) -> None:
    from companies.services import company_twilio_account_set

    sms_ready(company)
    own = ("AC" + "9" * 32, "own-auth-token")
    company_twilio_account_set(company=company, account_sid=own[0], auth_token=own[1])
    with twilio_fake() as fake:
        fake.account = own  # any other credentials fail the fake's assertion
        rows = sms_send(company=company, messages=[_message()])
    assert rows[0].status == DeliveryStatus.SENT
    assert fake.urls == [f"https://api.twilio.com/2010-04-01/Accounts/{own[0]}/Messages.json"]


def test_an_undecryptable_own_token_is_a_transient_error(company: Company) -> None:
    from companies.services import company_twilio_account_set

    sms_ready(company)
    company_twilio_account_set(company=company, account_sid="AC" + "9" * 32, auth_token="x")
    company.twilio_auth_token_encrypted = "not-a-fernet-token"
    with twilio_fake() as fake, pytest.raises(TransientSendError):
        sms_send(company=company, messages=[_message()])
    assert fake.requests == []
    assert Delivery.objects.for_company(company).get().status == DeliveryStatus.QUEUED


@override_settings(SMS_PROVIDER="outbox", SMS_RATE_TIMEOUT=0.0)
def test_the_development_outbox_does_not_wait_for_the_rate_limit(company: Company) -> None:
    """make run sends inline: three texts at the default 1/s must not hold the request."""
    rows = sms_send(company=company, messages=[_message(ANN), _message(BOB), _message(ANN)])
    assert [r.status for r in rows] == ["sent"] * 3
    assert OutboxMessage.objects.count() == 3
