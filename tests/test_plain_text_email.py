"""Plain-text parts read as typed, and nothing a person typed can add an email header.

Subjects and text parts are plain text: HTML-escaping them showed ``&lt;script&gt;`` and
``Tom &amp; Jerry`` to the reader. Only the HTML part escapes. CR/LF in anything that reaches a
header (a contact's name in a subject, a company's sender name) is one space, so it neither
starts a header of its own nor makes Django refuse the whole send.
"""

from __future__ import annotations

import pytest
from django.core import mail as django_mail

from companies.mail import header_safe, render_email
from companies.models import Company, Role
from companies.services import team_invite_create
from conftest import add_member
from responses.tests.conftest import make_contact, make_invitation, make_survey
from responses.tests.test_alerts import answer

pytestmark = pytest.mark.django_db

HOSTILE_NAME = "Tom & Jerry <script>x</script>\r\nBcc: victim@evil.test"


def test_header_safe_leaves_one_line():
    assert header_safe("a\r\nBcc: x\n\tb  c\u2028d") == "a Bcc: x b c d"


def test_render_email_escapes_only_the_html_part(company: Company):
    company.name = "Tom & Jerry's <b>"
    rendered = render_email(
        "notifications/webhooks/email/disabled",
        {"company": company, "endpoint": type("E", (), {"url": "https://x.test/?a=1&b=2"})()},
    )
    assert rendered.subject == "Webhook endpoint disabled: https://x.test/?a=1&b=2"
    assert "&amp;" not in rendered.text
    assert "https://x.test/?a=1&amp;b=2" in rendered.html


def test_an_alert_email_subject_and_text_are_not_html_escaped(
    company: Company, settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.ALERT_COMMENT_WAIT_SECONDS = 0
    add_member(company, "agent@acme.test", Role.AGENT)
    survey = make_survey(company)
    contact = make_contact(company, name=HOSTILE_NAME)
    invitation, _token = make_invitation(survey, contact)
    with django_capture_on_commit_callbacks(execute=True):
        answer(survey, invitation, 2, "<script>alert(1)</script> & more")
    assert mailoutbox, "the alert email went out"
    for message in mailoutbox:
        assert "&lt;" not in message.subject, message.subject
        assert "&amp;" not in message.subject, message.subject
        assert "\n" not in message.subject
        assert "\r" not in message.subject
        assert "Tom & Jerry <script>x</script> Bcc: victim@evil.test" in message.subject
        assert "<script>alert(1)</script> & more" in message.body
        assert "&lt;script&gt;" not in message.body
        assert "victim@evil.test" not in message.bcc
        assert "Bcc" not in message.extra_headers
        html = message.alternatives[0][0]
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_sender_name_with_a_line_break_cannot_add_a_header(
    company: Company, settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.ALERT_COMMENT_WAIT_SECONDS = 0
    company.sender_name = "Acme\r\nBcc: victim@evil.test"
    company.save(update_fields=["sender_name"])
    add_member(company, "agent@acme.test", Role.AGENT)
    survey = make_survey(company)
    invitation, _token = make_invitation(survey, make_contact(company))
    with django_capture_on_commit_callbacks(execute=True):
        answer(survey, invitation, 1, "bad")
    (message,) = mailoutbox
    assert "\n" not in message.from_email
    assert "\r" not in message.from_email
    assert message.bcc == []
    assert "Acme Bcc: victim@evil.test" in message.from_email
    message.message()  # Django builds the MIME message without BadHeaderError


def test_a_team_invite_subject_reads_as_typed(
    company: Company, django_capture_on_commit_callbacks, mailoutbox
):
    company.name = "Tom & Jerry's <Café>"
    company.save(update_fields=["name"])
    with django_capture_on_commit_callbacks(execute=True):
        team_invite_create(company=company, email="new@x.test", role="agent", invited_by=None)
    (message,) = django_mail.outbox
    assert "Tom & Jerry's <Café>" in message.subject
    assert "&amp;" not in message.body
