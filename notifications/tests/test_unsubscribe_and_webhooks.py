"""One-click unsubscribe (RFC 8058) and provider tracking webhooks through anymail's views."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from companies.models import Company
from notifications.models import Delivery, DeliveryEvent, DeliveryStatus, Suppression
from notifications.signals import address_suppressed, message_status_changed
from notifications.unsubscribe import unsubscribe_read, unsubscribe_token, unsubscribe_url

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return urlsplit(url).path


def suppressed(company: Company, address: str) -> Suppression | None:
    return Suppression.objects.for_company(company).filter(address=address).first()


# --- Unsubscribe ------------------------------------------------------------------------------


def test_url_is_absolute_and_signed(company: Company, settings: Any) -> None:
    url = unsubscribe_url(company=company, channel="email", address="Ann@X.test")
    assert url.startswith(settings.SITE_URL + "/u/")
    token = url.removeprefix(settings.SITE_URL + "/u/").removesuffix("/")
    read = unsubscribe_read(token)
    assert read is not None
    assert (read.company_id, read.channel, read.address) == (company.pk, "email", "ann@x.test")
    assert unsubscribe_read(token.replace(token[-3], "A" if token[-3] != "A" else "B")) is None


def test_get_shows_the_page_and_records_nothing(company: Company) -> None:
    url = unsubscribe_url(company=company, channel="email", address="ann@x.test")
    response = Client().get(path_of(url))
    assert response.status_code == 200
    body = response.content.decode()
    assert company.name in body
    assert "a***@x.test" in body
    assert "ann@x.test" not in body
    assert 'method="post"' in body
    assert suppressed(company, "ann@x.test") is None


def test_one_click_post_without_cookies_or_csrf_unsubscribes(company: Company) -> None:
    url = unsubscribe_url(company=company, channel="email", address="ann@x.test")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path_of(url),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    row = suppressed(company, "ann@x.test")
    assert row is not None
    assert row.reason == "unsubscribed"


def test_the_page_button_needs_its_csrf_token(company: Company) -> None:
    url = path_of(unsubscribe_url(company=company, channel="email", address="ann@x.test"))
    client = Client(enforce_csrf_checks=True)
    assert client.post(url, {}).status_code == 403
    assert suppressed(company, "ann@x.test") is None
    page = client.get(url)
    token = page.context["csrf_token"]
    response = client.post(url, {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 200
    assert suppressed(company, "ann@x.test") is not None


def test_the_token_only_suppresses_its_own_company(
    company: Company, other_company: Company
) -> None:
    url = unsubscribe_url(company=company, channel="email", address="ann@x.test")
    Client().post(path_of(url), {"List-Unsubscribe": "One-Click"})
    assert suppressed(other_company, "ann@x.test") is None


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + "xx", lambda t: "garbage", lambda t: t[5:]])
def test_bad_or_tampered_token_is_a_friendly_404(company: Company, mangle: Any) -> None:
    token = unsubscribe_token(company=company, channel="email", address="ann@x.test")
    url = reverse("notifications:unsubscribe", kwargs={"token": mangle(token)})
    for response in (Client().get(url), Client().post(url, {"List-Unsubscribe": "One-Click"})):
        assert response.status_code == 404
        assert "not valid" in response.content.decode()
    assert not Suppression.objects.for_company(company).exists()


def test_page_in_the_respondents_language(company: Company) -> None:
    url = unsubscribe_url(company=company, channel="email", address="a@x.test", language="ru")
    response = Client().get(path_of(url))
    assert '<html lang="ru">' in response.content.decode()
    plain = path_of(unsubscribe_url(company=company, channel="email", address="a@x.test"))
    assert '<html lang="kk">' in Client().get(plain + "?lang=kk").content.decode()


# --- Tracking webhooks ------------------------------------------------------------------------

SECRET = "hook:secret"
ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t", "WEBHOOK_SECRET": SECRET}
TRACKING = "/anymail/postmark/tracking/"


def post_webhook(payload: dict[str, Any], secret: str = SECRET) -> Any:
    auth = base64.b64encode(secret.encode()).decode()
    return Client().post(
        TRACKING,
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def sent_delivery(company: Company, to: str = "ann@x.test") -> Delivery:
    return Delivery.objects.create(
        company=company,
        channel="email",
        to=to,
        status=DeliveryStatus.SENT,
        provider="postmark",
        provider_message_id="883953f4-6105-42a2-a16a-77a8eac79483",
        metadata={"invitation": "inv1"},
    )


def bounce(to: str = "ann@x.test") -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": to,
        "From": "nps@localhost",
        "BouncedAt": "2025-05-01T10:00:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "How likely are you to recommend Acme?",
    }


def event(record_type: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": "ann@x.test",
        "Tag": "",
        "Metadata": {},
        "ServerID": 23,
        **extra,
        **({"DeliveredAt": at} if record_type == "Delivery" else {"ReceivedAt": at}),
    }


@override_settings(ANYMAIL=ANYMAIL, EMAIL_PROVIDER="postmark")
def test_bounce_webhook_suppresses_records_and_signals(
    company: Company, other_company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    delivery = sent_delivery(company)
    statuses: list[dict[str, Any]] = []
    suppressions: list[dict[str, Any]] = []

    def on_status(sender: Any, **kwargs: Any) -> None:
        statuses.append(kwargs)

    def on_suppressed(sender: Any, **kwargs: Any) -> None:
        suppressions.append(kwargs)

    message_status_changed.connect(on_status)
    address_suppressed.connect(on_suppressed)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_webhook(bounce())
    finally:
        message_status_changed.disconnect(on_status)
        address_suppressed.disconnect(on_suppressed)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED
    (recorded,) = DeliveryEvent.objects.for_company(company).filter(delivery=delivery)
    assert recorded.event == "bounced"
    assert recorded.occurred_at.isoformat().startswith("2025-05-01T10:00:00")
    row = suppressed(company, "ann@x.test")
    assert row is not None
    assert row.reason == "bounced"
    assert suppressed(other_company, "ann@x.test") is None
    assert statuses == [
        {
            "signal": message_status_changed,
            "company_id": company.pk,
            "delivery_id": delivery.pk,
            "status": "bounced",
            "metadata": {"invitation": "inv1"},
            "occurred_at": recorded.occurred_at,
        }
    ]
    assert suppressions[0]["reason"] == "bounced"
    assert suppressions[0]["company_id"] == company.pk


@override_settings(ANYMAIL=ANYMAIL, EMAIL_PROVIDER="postmark")
def test_status_only_moves_forward(company: Company) -> None:
    delivery = sent_delivery(company)
    open_event = event(
        "Open", "2025-05-01T10:05:00Z", FirstOpen=True, Platform="Desktop", ReadSeconds=5
    )
    assert post_webhook(open_event).status_code == 200
    assert post_webhook(event("Delivery", "2025-05-01T10:00:00Z", Details="OK")).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.OPENED
    events = DeliveryEvent.objects.for_company(company).order_by("occurred_at")
    assert [e.event for e in events] == ["delivered", "opened"]
    assert not Suppression.objects.for_company(company).exists()


@override_settings(ANYMAIL=ANYMAIL, EMAIL_PROVIDER="postmark")
def test_a_repeated_webhook_is_recorded_once(company: Company) -> None:
    """Providers post again when an answer was slow: the same event counts once; a later
    event of the same kind (another open) is still recorded."""
    delivery = sent_delivery(company)
    first_open = event("Open", "2025-05-01T10:05:00Z", FirstOpen=True, ReadSeconds=5)
    for _ in range(3):
        assert post_webhook(first_open).status_code == 200
    assert post_webhook(event("Open", "2025-05-02T08:00:00Z", ReadSeconds=9)).status_code == 200
    events = DeliveryEvent.objects.for_company(company).filter(delivery=delivery)
    assert sorted(e.occurred_at.isoformat()[:19] for e in events) == [
        "2025-05-01T10:05:00",
        "2025-05-02T08:00:00",
    ]


@override_settings(ANYMAIL=ANYMAIL, EMAIL_PROVIDER="postmark")
def test_wrong_secret_is_refused(company: Company) -> None:
    sent_delivery(company)
    assert post_webhook(bounce(), secret="hook:wrong").status_code == 400
    assert not Suppression.objects.for_company(company).exists()


@override_settings(ANYMAIL={**ANYMAIL, "WEBHOOK_SECRET": ""}, EMAIL_PROVIDER="postmark")
def test_webhooks_are_off_without_a_secret(company: Company) -> None:
    sent_delivery(company)
    assert post_webhook(bounce()).status_code == 404
    assert not Suppression.objects.for_company(company).exists()


@override_settings(ANYMAIL=ANYMAIL, EMAIL_PROVIDER="mailgun")
def test_only_the_configured_providers_webhook_is_live(company: Company) -> None:
    sent_delivery(company)
    assert post_webhook(bounce()).status_code == 404
    assert not Suppression.objects.for_company(company).exists()


@override_settings(ANYMAIL=ANYMAIL, EMAIL_PROVIDER="postmark")
def test_unknown_message_is_ignored(company: Company) -> None:
    assert post_webhook(bounce()).status_code == 200
    assert not DeliveryEvent.objects.for_company(company).exists()
