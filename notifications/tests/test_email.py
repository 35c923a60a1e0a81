"""email_send through the real anymail Postmark backend; only requests' HTTP transport is fake.

``requests.adapters.HTTPAdapter.send`` is replaced at the edge: the request anymail built is
captured and a Postmark-shaped response returned, so serialisation, endpoint choice and the
parsing of per-recipient results are anymail's own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
import requests
from django.test import override_settings
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError

from companies.models import Company
from notifications.email import OutgoingEmail, email_send, merge_field
from notifications.models import Delivery, DeliveryStatus, OutboxMessage
from notifications.services import suppression_add
from notifications.signals import message_status_changed
from notifications.transport import TransientSendError

pytestmark = pytest.mark.django_db

POSTMARK = {
    "EMAIL_PROVIDER": "postmark",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "EMAIL_RATE_PER_SECOND": 1_000_000.0,
    "EMAIL_RATE_BURST": 1_000_000,
    "EMAIL_BATCH_SIZE": 0,
}


def anymail_settings(*, bulk: bool) -> dict[str, Any]:
    return {
        "POSTMARK_SERVER_TOKEN": "test-server-token",
        "POSTMARK_USE_BULK_API": bulk,
        "WEBHOOK_SECRET": "hook:secret",
    }


@dataclass
class FakePostmark:
    """Captures each API call; ``respond`` builds the JSON answer for one call."""

    respond: Callable[[str, Any], tuple[int, Any]]
    calls: list[tuple[str, Any]] = field(default_factory=list)
    on_call: Callable[[str, Any], None] | None = None

    def send(self, adapter: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        assert request.url is not None
        assert request.url.startswith("https://api.postmarkapp.com/")
        assert request.headers["X-Postmark-Server-Token"] == "test-server-token"
        endpoint = request.url.removeprefix("https://api.postmarkapp.com/")
        assert isinstance(request.body, bytes | str | None)
        body = json.loads(request.body or b"{}")
        self.calls.append((endpoint, body))
        if self.on_call is not None:
            self.on_call(endpoint, body)
        status, payload = self.respond(endpoint, body)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response


def accept_all(endpoint: str, body: Any) -> tuple[int, Any]:
    def ok(to: str) -> dict[str, Any]:
        return {"To": to, "MessageID": str(uuid.uuid4()), "ErrorCode": 0, "Message": "OK"}

    if endpoint == "email/bulk":
        return 200, {"ID": str(uuid.uuid4()), "Status": "Accepted", "PercentageCompleted": 0}
    if endpoint == "email/batch":
        return 200, [ok(message["To"]) for message in body]
    return 200, ok(body["To"])


@pytest.fixture
def fake_postmark() -> Iterator[Callable[..., FakePostmark]]:
    patches = []

    def install(respond: Callable[[str, Any], tuple[int, Any]] = accept_all) -> FakePostmark:
        fake = FakePostmark(respond=respond)
        patcher = mock.patch.object(requests.adapters.HTTPAdapter, "send", autospec=True)
        patched = patcher.start()
        patched.side_effect = fake.send
        patches.append(patcher)
        return fake

    yield install
    for patcher in patches:
        patcher.stop()


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens at the provider's address."""
    pool = HTTPSConnectionPool("api.postmarkapp.com")
    cause = NewConnectionError(
        HTTPSConnection("api.postmarkapp.com"), "Failed to establish a new connection: refused"
    )
    return requests.ConnectionError(MaxRetryError(pool, "/email/bulk", reason=cause))


def survey_email(address: str, n: int) -> OutgoingEmail:
    """A survey-like email: one body for all, links and unsubscribe URL per recipient."""
    answer = merge_field("answer_url")
    unsubscribe = merge_field("unsubscribe_url")
    return OutgoingEmail(
        to=address,
        subject="How likely are you to recommend Acme?",
        text=f"Answer: {answer}\nUnsubscribe: {unsubscribe}",
        html=f'<a href="{answer}">Answer</a> <a href="{unsubscribe}">Unsubscribe</a>',
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        from_name="Acme",
        metadata={"invitation": f"inv{n}"},
        merge={
            "answer_url": f"https://nps.test/r/token{n}/",
            "unsubscribe_url": f"https://nps.test/u/unsub{n}/",
        },
    )


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=True))
def test_bulk_batches_of_500_with_each_recipients_values(
    company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    fake = fake_postmark()
    seen_in_call: list[dict[str, int]] = []

    def ledger_before_call(endpoint: str, body: Any) -> None:
        # The rows exist before the provider is called: this batch sending, the rest queued.
        rows = Delivery.objects.for_company(company)
        seen_in_call.append(
            {
                "total": rows.count(),
                "sending": rows.filter(status=DeliveryStatus.SENDING).count(),
                "queued": rows.filter(status=DeliveryStatus.QUEUED).count(),
            }
        )
        sending = set(rows.filter(status=DeliveryStatus.SENDING).values_list("to", flat=True))
        assert sending == {message["To"] for message in body["Messages"]}

    fake.on_call = ledger_before_call
    emails = [survey_email(f"person{n}@example.test", n) for n in range(1201)]
    deliveries = email_send(company=company, emails=emails)

    assert [endpoint for endpoint, _body in fake.calls] == ["email/bulk"] * 3
    assert [len(body["Messages"]) for _e, body in fake.calls] == [500, 500, 201]
    assert seen_in_call == [
        {"total": 1201, "sending": 500, "queued": 701},
        {"total": 1201, "sending": 500, "queued": 201},
        {"total": 1201, "sending": 201, "queued": 0},
    ]
    # One body with Postmark merge fields; each recipient's own values, headers, metadata.
    body = fake.calls[0][1]
    assert '<a href="{{answer_url}}">Answer</a>' in body["HtmlBody"]
    assert "Unsubscribe: {{unsubscribe_url}}" in body["TextBody"]
    assert body["From"] == "Acme <nps@localhost>"
    seventh = body["Messages"][7]
    assert seventh["To"] == "person7@example.test"
    assert seventh["TemplateModel"] == {
        "answer_url": "https://nps.test/r/token7/",
        "unsubscribe_url": "https://nps.test/u/unsub7/",
    }
    headers = {h["Name"]: h["Value"] for h in seventh["Headers"]}
    assert headers["List-Unsubscribe"] == "<https://nps.test/u/unsub7/>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert seventh["Metadata"]["invitation"] == "inv7"
    # Rows come back in order, sent, with the id the provider will report in webhooks.
    assert [d.to for d in deliveries] == [e.to for e in emails]
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    stored = Delivery.objects.for_company(company).get(to="person7@example.test")
    assert stored.provider_message_id == seventh["Metadata"]["anymail_id"]
    assert stored.attempts == 1
    assert stored.metadata == {"invitation": "inv7"}
    assert stored.provider == "postmark"


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=False))
def test_transactional_postmark_sends_personalised_mail_one_per_call(
    company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    fake = fake_postmark()
    deliveries = email_send(
        company=company, emails=[survey_email("a@x.test", 1), survey_email("b@x.test", 2)]
    )
    assert [endpoint for endpoint, _b in fake.calls] == ["email", "email"]
    first = fake.calls[0][1]
    assert first["To"] == "a@x.test"
    assert '<a href="https://nps.test/r/token1/">Answer</a>' in first["HtmlBody"]
    assert "[[nps:" not in json.dumps(fake.calls)
    assert {h["Name"]: h["Value"] for h in first["Headers"]}["List-Unsubscribe"] == (
        "<https://nps.test/u/unsub1/>"
    )
    assert [d.status for d in deliveries] == [DeliveryStatus.SENT, DeliveryStatus.SENT]


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=False))
def test_identical_mail_batches_and_a_rejected_recipient_fails(
    company: Company,
    fake_postmark: Callable[..., FakePostmark],
    django_capture_on_commit_callbacks: Any,
) -> None:
    def bob_inactive(endpoint: str, body: Any) -> tuple[int, Any]:
        answers = []
        for message in body:
            if message["To"] == "bob@x.test":
                answers.append(
                    {
                        "ErrorCode": 406,
                        "Message": "You tried to send to a recipient that has been marked as "
                        "inactive.\nFound inactive addresses: bob@x.test.\nInactive recipients "
                        "are ones that have generated a hard bounce or a spam complaint. ",
                    }
                )
            else:
                answers.append(
                    {
                        "To": message["To"],
                        "MessageID": f"id-{message['To']}",
                        "ErrorCode": 0,
                        "Message": "OK",
                    }
                )
        return 200, answers

    fake = fake_postmark(bob_inactive)
    statuses: list[tuple[str, dict[str, str]]] = []

    def listen(sender: Any, status: str, metadata: dict[str, str], **kwargs: Any) -> None:
        statuses.append((status, metadata))

    message_status_changed.connect(listen)
    try:
        emails = [
            OutgoingEmail(to=to, subject="Hello", text="Same for all", html="", metadata={"n": to})
            for to in ("ann@x.test", "bob@x.test", "cid@x.test")
        ]
        with django_capture_on_commit_callbacks(execute=True):
            deliveries = email_send(company=company, emails=emails)
    finally:
        message_status_changed.disconnect(listen)
    assert [endpoint for endpoint, _b in fake.calls] == ["email/batch"]
    assert [m["To"] for m in fake.calls[0][1]] == ["ann@x.test", "bob@x.test", "cid@x.test"]
    ann, bob, cid = deliveries
    assert (ann.status, ann.provider_message_id) == (DeliveryStatus.SENT, "id-ann@x.test")
    assert bob.status == DeliveryStatus.FAILED
    assert "rejected" in bob.error
    assert cid.status == DeliveryStatus.SENT
    assert Delivery.objects.for_company(company).get(pk=bob.pk).status == DeliveryStatus.FAILED
    assert ("failed", {"n": "bob@x.test"}) in statuses
    assert ("sent", {"n": "ann@x.test"}) in statuses


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=True))
def test_5xx_is_transient_and_a_retry_reuses_the_rows(
    company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    fake = fake_postmark(lambda endpoint, body: (503, {"ErrorCode": 100, "Message": "Down"}))
    emails = [survey_email(f"p{n}@x.test", n) for n in range(3)]
    with pytest.raises(TransientSendError) as caught:
        email_send(company=company, emails=emails)
    rows = caught.value.deliveries
    assert len(fake.calls) == 1
    assert [row.status for row in rows] == [DeliveryStatus.QUEUED] * 3
    in_db = Delivery.objects.for_company(company).order_by("pk")
    assert [(d.status, d.attempts) for d in in_db] == [(DeliveryStatus.QUEUED, 1)] * 3

    fake.respond = accept_all
    retry = [
        OutgoingEmail(**{**email.__dict__, "delivery_id": row.pk})
        for email, row in zip(emails, rows, strict=True)
    ]
    again = email_send(company=company, emails=retry)
    assert [d.pk for d in again] == [d.pk for d in rows]
    assert Delivery.objects.for_company(company).count() == 3
    assert {d.status for d in in_db.all()} == {DeliveryStatus.SENT}
    # A third run (a redelivered task) sends nothing: the rows are decided.
    calls_before = len(fake.calls)
    email_send(company=company, emails=retry)
    assert len(fake.calls) == calls_before


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=True))
def test_network_error_is_transient(
    company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    def unreachable(endpoint: str, body: Any) -> tuple[int, Any]:
        raise refused()

    fake_postmark(unreachable)
    with pytest.raises(TransientSendError):
        email_send(company=company, emails=[survey_email("p@x.test", 1)])
    assert Delivery.objects.for_company(company).get().status == DeliveryStatus.QUEUED


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=True))
def test_422_fails_the_batch_permanently(
    company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    fake_postmark(lambda e, b: (422, {"ErrorCode": 300, "Message": "Invalid 'From' address"}))
    (delivery,) = email_send(company=company, emails=[survey_email("p@x.test", 1)])
    assert delivery.status == DeliveryStatus.FAILED
    assert "422" in delivery.error


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=True))
def test_suppressed_and_invalid_addresses_are_never_sent(
    company: Company, other_company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    fake = fake_postmark()
    suppression_add(company=company, channel="email", address="Gone@X.test", reason="bounced")
    # Another company's suppression does not apply here.
    suppression_add(company=other_company, channel="email", address="ok@x.test", reason="manual")
    emails = [
        survey_email("gone@x.test", 1),
        survey_email("ok@x.test", 2),
        survey_email("not an address", 3),
        survey_email("ok2@x.test", 4),
    ]
    gone, ok, bad, ok2 = email_send(company=company, emails=emails)
    assert gone.status == DeliveryStatus.SUPPRESSED
    assert bad.status == DeliveryStatus.FAILED
    assert "invalid" in bad.error
    assert ok.status == ok2.status == DeliveryStatus.SENT
    sent_to = [m["To"] for _e, body in fake.calls for m in body["Messages"]]
    assert sent_to == ["ok@x.test", "ok2@x.test"]


@override_settings(**POSTMARK, ANYMAIL=anymail_settings(bulk=True))
def test_html_active_values_are_rendered_here_and_escaped(
    company: Company, fake_postmark: Callable[..., FakePostmark]
) -> None:
    fake = fake_postmark()
    name = merge_field("name")
    emails = [
        OutgoingEmail(
            to=f"{n}@x.test",
            subject="Hi",
            text=f"Dear {name}",
            html=f"<p>Dear {name}</p>",
            merge={"name": value},
        )
        for n, value in enumerate(["Ann", "Bob", "O'Brien & Co"])
    ]
    email_send(company=company, emails=emails)
    bodies = [body for _e, body in fake.calls]
    assert len(bodies) == 2  # Ann and Bob batched, O'Brien on its own
    batch = next(b for b in bodies if len(b["Messages"]) == 2)
    assert batch["HtmlBody"] == "<p>Dear {{name}}</p>"
    single = next(b for b in bodies if len(b["Messages"]) == 1)
    assert single["HtmlBody"] == "<p>Dear O&#x27;Brien &amp; Co</p>"
    assert single["TextBody"] == "Dear O'Brien & Co"


def test_a_missing_merge_value_is_refused_before_anything_is_written(company: Company) -> None:
    email = OutgoingEmail(to="a@x.test", subject="s", text=merge_field("link"), html="")
    with pytest.raises(ValueError, match="link"):
        email_send(company=company, emails=[email])
    assert not Delivery.objects.for_company(company).exists()


@override_settings(
    EMAIL_PROVIDER="outbox",
    EMAIL_BACKEND="notifications.backends.OutboxEmailBackend",
    EMAIL_RATE_PER_SECOND=1_000_000.0,
    EMAIL_RATE_BURST=1_000_000,
)
def test_the_development_outbox_stores_each_recipient_with_own_links(company: Company) -> None:
    deliveries = email_send(
        company=company, emails=[survey_email("a@x.test", 1), survey_email("b@x.test", 2)]
    )
    stored = {m.to[0]: m for m in OutboxMessage.objects.all()}
    assert set(stored) == {"a@x.test", "b@x.test"}
    assert '<a href="https://nps.test/r/token2/">Answer</a>' in stored["b@x.test"].html
    assert "Answer: https://nps.test/r/token1/" in stored["a@x.test"].text
    assert stored["a@x.test"].headers["List-Unsubscribe"] == "<https://nps.test/u/unsub1/>"
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert {d.provider_message_id for d in deliveries} == {m.id for m in stored.values()}
