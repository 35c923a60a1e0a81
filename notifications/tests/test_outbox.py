"""The development outbox: the email backend, /dev/outbox/ and /dev/outbox.json."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from anymail.message import AnymailMessage
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.test import Client, override_settings
from django.utils import timezone

from notifications.models import OutboxMessage
from notifications.services import outbox_record

pytestmark = pytest.mark.django_db

OUTBOX_BACKEND = "notifications.backends.OutboxEmailBackend"
enabled = override_settings(DEV_OUTBOX_ENABLED=True)
disabled = override_settings(DEV_OUTBOX_ENABLED=False)


def send(message: EmailMessage) -> int:
    message.connection = get_connection(OUTBOX_BACKEND)
    return message.send()


def survey_mail() -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject="Как вы оцениваете Acme?",
        body="Rate us: http://127.0.0.1:8000/r/abc123/",
        from_email="Acme Coffee <nps@acme.test>",
        to=["ann@example.test", "bob@example.test"],
        cc=["cc@example.test"],
        bcc=["audit@example.test"],
        reply_to=["support@acme.test"],
        headers={
            "List-Unsubscribe": "<http://127.0.0.1:8000/u/abc123/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(
        '<p>Rate us: <a href="http://127.0.0.1:8000/r/abc123/?score=10">10</a></p>', "text/html"
    )
    return message


# --- The email backend ------------------------------------------------------------------------


def test_backend_stores_a_multipart_mail_with_its_headers():
    message = survey_mail()
    assert send(message) == 1
    stored = OutboxMessage.objects.get()
    assert stored.channel == "email"
    assert stored.to == ["ann@example.test", "bob@example.test"]
    assert stored.subject == "Как вы оцениваете Acme?"
    assert stored.text == "Rate us: http://127.0.0.1:8000/r/abc123/"
    assert 'href="http://127.0.0.1:8000/r/abc123/?score=10"' in stored.html
    headers = stored.headers
    assert headers["Subject"] == "Как вы оцениваете Acme?"  # RFC 2047 decoded
    assert headers["From"] == "Acme Coffee <nps@acme.test>"
    assert headers["To"] == "ann@example.test, bob@example.test"
    assert headers["Cc"] == "cc@example.test"
    assert headers["Bcc"] == "audit@example.test"
    assert headers["Reply-To"] == "support@acme.test"
    assert headers["List-Unsubscribe"] == "<http://127.0.0.1:8000/u/abc123/>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Message-ID" in headers
    assert "Content-Type" not in headers
    assert len(stored.id) >= 16
    assert not stored.id.isdigit()
    # Callers written for anymail can read the "provider" id and status.
    status = message.anymail_status  # type: ignore[attr-defined]
    assert status.message_id == stored.id
    assert status.status == {"sent"}
    assert set(status.recipients) == {
        "ann@example.test",
        "bob@example.test",
        "cc@example.test",
        "audit@example.test",
    }


def test_html_only_message_and_attachments():
    message = EmailMessage(subject="Report", body="<b>bold</b>", to=["a@example.test"])
    message.content_subtype = "html"
    message.attach("scores.csv", "score\n10\n", "text/csv")
    send(message)
    stored = OutboxMessage.objects.get()
    assert stored.html == "<b>bold</b>"
    assert stored.text == ""
    assert stored.headers["X-Outbox-Attachments"] == "scores.csv"


def test_message_without_recipients_is_not_stored():
    assert send(EmailMessage(subject="Nobody", body="x", to=[])) == 0
    assert OutboxMessage.objects.count() == 0


def test_batch_send_becomes_one_message_per_recipient():
    message = AnymailMessage(
        subject="Hi {{name}}",
        body="Hello {{name}}",
        to=["ann@example.test", "bob@example.test"],
        tags=["survey"],
    )
    message.merge_data = {"ann@example.test": {"name": "Ann"}, "bob@example.test": {"name": "Bob"}}
    message.merge_headers = {
        "ann@example.test": {"List-Unsubscribe": "<https://x.test/u/ann>"},
        "bob@example.test": {"List-Unsubscribe": "<https://x.test/u/bob>"},
    }
    send(message)
    stored = {m.to[0]: m for m in OutboxMessage.objects.all()}
    assert set(stored) == {"ann@example.test", "bob@example.test"}
    ann = stored["ann@example.test"]
    assert ann.headers["To"] == "ann@example.test"
    assert ann.headers["List-Unsubscribe"] == "<https://x.test/u/ann>"
    assert ann.headers["X-Anymail-Merge-Data"] == '{"name": "Ann"}'
    assert ann.headers["X-Anymail-Tags"] == '["survey"]'
    assert stored["bob@example.test"].headers["List-Unsubscribe"] == "<https://x.test/u/bob>"
    ids = message.anymail_status.message_id
    assert ids == {ann.id, stored["bob@example.test"].id}


def test_backend_is_what_the_outbox_provider_selects():
    from nps_saas import settings as project_settings

    assert project_settings.EMAIL_PROVIDERS["outbox"] == OUTBOX_BACKEND


def test_outbox_record_for_sms():
    stored = outbox_record(channel="sms", to="+77011234567", text="Reply 0-10")
    assert stored.to == "+77011234567"
    assert stored.headers == {}
    with pytest.raises(ValueError, match="channel"):
        outbox_record(channel="pigeon", to="x", text="coo")


# --- /dev/outbox.json ---------------------------------------------------------------------------


@enabled
def test_json_lists_messages_newest_first_with_every_field():
    older = outbox_record(channel="sms", to="+77011234567", text="Reply with 0-10")
    OutboxMessage.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    send(survey_mail())
    response = Client().get("/dev/outbox.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    body = response.json()
    assert [m["channel"] for m in body] == ["email", "sms"]
    newest = body[0]
    assert set(newest) == {
        "id",
        "channel",
        "to",
        "subject",
        "text",
        "html",
        "headers",
        "created_at",
    }
    assert newest["to"] == ["ann@example.test", "bob@example.test"]
    assert newest["subject"] == "Как вы оцениваете Acme?"
    assert newest["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "score=10" in newest["html"]
    assert body[1]["to"] == "+77011234567"
    assert body[1]["id"] == older.id
    assert body[0]["created_at"] > body[1]["created_at"]


@enabled
def test_json_of_an_empty_outbox():
    assert Client().get("/dev/outbox.json").json() == []


# --- Only in the embedded default ------------------------------------------------------------


@disabled
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/dev/outbox/"),
        ("get", "/dev/outbox.json"),
        ("get", "/dev/outbox/{id}/html"),
        ("post", "/dev/outbox/clear"),
    ],
)
def test_everything_is_404_when_disabled(method, url):
    stored = outbox_record(channel="email", to=["a@example.test"], subject="s", html="<p>x</p>")
    response = getattr(Client(), method)(url.format(id=stored.id))
    assert response.status_code == 404
    assert OutboxMessage.objects.count() == 1  # clear did nothing


def test_enabled_only_in_the_embedded_default():
    from django.conf import settings

    assert settings.DEV_OUTBOX_ENABLED is (settings.NPS_MODE == "embedded")


# --- /dev/outbox/ --------------------------------------------------------------------------------


@enabled
def test_page_shows_messages_and_working_links():
    send(survey_mail())
    outbox_record(channel="sms", to="+77011234567", text="Reply 0-10: https://x.test/s/1")
    stored = OutboxMessage.objects.get(channel="email")
    response = Client().get("/dev/outbox/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="outbox-message"') == 2
    assert html.index("+77011234567") < html.index("Как вы оцениваете Acme?")  # newest first
    assert "ann@example.test, bob@example.test" in html
    assert "List-Unsubscribe-Post" in html
    # The text part's links are clickable.
    assert '<a href="http://127.0.0.1:8000/r/abc123/"' in html
    assert '<a href="https://x.test/s/1"' in html
    # The HTML part in a sandboxed iframe from its own URL (no scripts, no same-origin).
    frame = re.search(r"<iframe[^>]*>", html)
    assert frame
    assert f'src="/dev/outbox/{stored.id}/html"' in frame.group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "allow-scripts" not in frame.group(0)
    assert "allow-same-origin" not in frame.group(0)
    assert 'action="/dev/outbox/clear"' in html


@enabled
def test_html_body_view_may_be_framed_by_the_outbox_only():
    send(survey_mail())
    stored = OutboxMessage.objects.get()
    response = Client().get(f"/dev/outbox/{stored.id}/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    body = response.content.decode()
    assert body.startswith('<base target="_blank">')
    assert 'href="http://127.0.0.1:8000/r/abc123/?score=10"' in body
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp
    assert "script-src 'none'" in csp
    assert "sandbox allow-popups allow-popups-to-escape-sandbox" in csp
    # Every other page still refuses to be framed.
    page = Client().get("/dev/outbox/")
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


@enabled
def test_html_view_404s_for_unknown_or_text_only_messages():
    text_only = outbox_record(channel="sms", to="+77011234567", text="hi")
    assert Client().get(f"/dev/outbox/{text_only.id}/html").status_code == 404
    assert Client().get("/dev/outbox/nope/html").status_code == 404


@enabled
def test_empty_page_has_no_clear_button():
    html = Client().get("/dev/outbox/").content.decode()
    assert "The outbox is empty" in html
    assert "/dev/outbox/clear" not in html


@enabled
def test_clear_button_empties_the_outbox():
    send(survey_mail())
    outbox_record(channel="sms", to="+77011234567", text="x")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/dev/outbox/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    assert client.post("/dev/outbox/clear").status_code == 403  # CSRF protected
    response = client.post(
        "/dev/outbox/clear", {"csrfmiddlewaretoken": token.group(1)}, follow=True
    )
    assert response.status_code == 200
    assert OutboxMessage.objects.count() == 0
    assert "Outbox cleared (2 messages)." in response.content.decode()


@enabled
def test_clear_needs_post():
    outbox_record(channel="sms", to="+77011234567", text="x")
    assert Client().get("/dev/outbox/clear").status_code == 405
    assert OutboxMessage.objects.count() == 1
