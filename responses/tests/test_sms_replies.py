"""Answering by text message through Twilio's signed webhooks: conversations, opt-outs, and
the status callback. Requests are signed with twilio's own RequestValidator."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import timezone
from twilio.request_validator import RequestValidator

from companies.models import Company
from notifications.models import Channel, Delivery, DeliveryStatus, Suppression
from notifications.tests.twilio_fake import AUTH_TOKEN, sms_ready, twilio_fake
from responses.models import Response
from responses.sms_replies import HELP_WORDS, START_WORDS, STOP_WORDS, parse_score
from surveys.defaults import SMS_TEXTS
from surveys.models import Contact, Invitation, InvitationEvent, InvitationStatus
from surveys.services.dispatch import invitations_dispatch_due
from surveys.services.send import invitations_send
from surveys.services.triggers import invitation_trigger
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db

SITE = "https://nps.example.com"
INBOUND = "/twilio/inbound/"
ANN = "+77011234567"
SENDER = "+14155550100"
DAYTIME_KZ = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _twilio_settings() -> Any:
    with (
        override_settings(SITE_URL=SITE, TWILIO_AUTH_TOKEN=AUTH_TOKEN, SMS_PROVIDER="twilio"),
        time_machine.travel(DAYTIME_KZ, tick=True),
    ):
        yield


def signed_post(
    client: Client,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    signed_params: dict[str, str] | None = None,
    signature: str | None = None,
) -> Any:
    url = signed_url or SITE + path
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, signed_params or params)
    if not signature:
        return client.post(path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def reply(client: Client, body: str, *, sender: str = ANN, to: str = SENDER, **extra: str) -> Any:
    params = {"From": sender, "To": to, "Body": body, "MessageSid": f"SM{uuid.uuid4().hex}"}
    params.update(extra)
    return signed_post(client, INBOUND, params)


def messages_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)  # noqa: S314 (our own TwiML answer)
    assert root.tag == "Response"
    return [element.text or "" for element in root.iter("Message")]


def invite(company: Company, *, phone: str = ANN, name: str = "Ann", **kw: Any) -> Invitation:
    """An SMS invitation sent through the real twilio library (fake HTTP)."""
    survey = kw.pop("survey", None) or active_survey(company)
    invitation, _outcome = invitation_trigger(
        company=company, survey=survey, phone=phone, name=name, channel=Channel.SMS, **kw
    )
    assert invitation is not None
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    with twilio_fake():
        invitations_send(company=company, invitation_ids=[invitation.pk])
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    return invitation


def _delivery_of(company: Company, invitation: Invitation) -> Delivery:
    assert invitation.delivery_id is not None
    return Delivery.objects.for_company(company).get(pk=invitation.delivery_id)


def _responses(company: Company) -> Any:
    return Response.objects.for_company(company)


# --- Signatures -------------------------------------------------------------------------------


def test_a_valid_signature_is_accepted(client: Client, company: Company) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    assert messages_of(reply(client, "9"))
    assert _responses(company).get().score == 9


@pytest.mark.parametrize("case", ["tampered body", "wrong url", "missing header", "other key"])
def test_a_bad_or_missing_signature_is_403_and_records_nothing(
    client: Client, company: Company, case: str
) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    params = {"From": ANN, "To": SENDER, "Body": "9", "MessageSid": "SMin"}
    if case == "tampered body":
        response = signed_post(client, INBOUND, params, signed_params={**params, "Body": "2"})
    elif case == "wrong url":
        response = signed_post(client, INBOUND, params, signed_url="http://testserver" + INBOUND)
    elif case == "missing header":
        response = signed_post(client, INBOUND, params, signature="")
    else:
        wrong = RequestValidator("another-token").compute_signature(SITE + INBOUND, params)
        response = signed_post(client, INBOUND, params, signature=wrong)
    assert response.status_code == 403
    assert not _responses(company).exists()
    unsigned_stop = signed_post(client, INBOUND, {**params, "Body": "STOP"}, signature="")
    assert unsigned_stop.status_code == 403
    assert not Suppression.objects.for_company(company).exists()


def test_a_message_twilio_delivers_twice_is_acted_on_once(client: Client, company: Company) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    sid = f"SM{uuid.uuid4().hex}"  # the cache outlives a test run: an id of its own
    assert messages_of(reply(client, "9", MessageSid=sid))
    assert messages_of(reply(client, "9", MessageSid=sid)) == []  # the duplicate
    response = _responses(company).get()
    assert (response.score, response.comment) == (9, "")


def test_webhooks_take_only_post(client: Client) -> None:
    assert client.get(INBOUND).status_code == 405
    assert client.get("/twilio/status/").status_code == 405


# --- Conversations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("9", 9),
        (" 10 ", 10),
        ("9/10", 9),
        ("9 / 10", 9),
        ("10!", 10),
        ("0", 0),
        ("Оценка: 8", 8),
        ("моя оценка 7 из 10", 7),
        ("I'd say 6 out of 10", 6),
        ("11", None),
        ("12 3", None),
        ("hello", None),
        ("", None),
        ("call me at 5 tomorrow, the delivery was late and the barista was rude", None),
    ],
)
def test_parse_score(text: str, score: int | None) -> None:
    assert parse_score(text) == score


def test_score_then_comment_then_thanks(client: Client, company: Company) -> None:
    sms_ready(company, sender=SENDER)
    invitation = invite(company)
    assert messages_of(reply(client, "9/10")) == [
        f"Great to hear! What do you like most about {company.name}?"
    ]
    response = _responses(company).get()
    assert (response.score, response.channel, response.comment) == (9, "sms", "")
    assert response.invitation_id == invitation.pk
    assert messages_of(reply(client, "  The flat white  ")) == [
        f"Thank you for your feedback! It helps {company.name} get better."
    ]
    response.refresh_from_db()
    assert (response.score, response.comment) == (9, "The flat white")
    # The conversation is over: a further message records nothing.
    after = messages_of(reply(client, "3"))
    assert after == [
        f"{company.name}: thank you for your message. There is no open survey to answer."
    ]
    response.refresh_from_db()
    assert (response.score, response.comment) == (9, "The flat white")
    events = InvitationEvent.objects.for_company(company).filter(invitation=invitation)
    assert {"answered", "sms_score", "sms_closed"} <= set(events.values_list("event", flat=True))


def test_a_detractor_gets_the_detractor_follow_up_in_russian(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    invite(company, language="ru")
    assert messages_of(reply(client, "Ставлю 3!")) == [
        "Нам жаль это слышать. Что вас разочаровало и что нам стоит исправить в первую очередь?"
    ]
    assert _responses(company).get().score == 3


def test_garbage_gets_a_short_help_and_records_nothing(client: Client, company: Company) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    for text in ("hello?", "11", "between 7 and 8"):
        assert messages_of(reply(client, text)) == [
            "Please reply with a number from 0 to 10. Reply STOP to opt out."
        ]
    assert not _responses(company).exists()
    assert messages_of(reply(client, "8"))  # still open for a score
    assert _responses(company).get().score == 8


def test_no_open_invitation_gets_a_polite_reply_and_nothing_is_recorded(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    assert messages_of(reply(client, "10")) == [
        f"{company.name}: thank you for your message. There is no open survey to answer."
    ]
    assert not _responses(company).exists()
    # An expired link closes the conversation too.
    invitation = invite(company)
    Invitation.objects.for_company(company).filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert "no open survey" in messages_of(reply(client, "10"))[0]
    assert not _responses(company).exists()


def test_a_message_to_a_number_nobody_owns_gets_an_empty_answer(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    assert messages_of(reply(client, "9", to="+14155550999")) == []
    assert not _responses(company).exists()


def test_two_companies_sharing_a_contacts_phone_each_get_their_own_answer(
    client: Client, company: Company, other_company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    sms_ready(other_company, sender="+14155550200")
    mine = invite(company)
    theirs = invite(other_company)
    assert messages_of(reply(client, "2", to="+14155550200"))
    assert not _responses(company).exists()
    answer = _responses(other_company).get()
    assert (answer.score, answer.invitation_id) == (2, theirs.pk)
    assert messages_of(reply(client, "10", to=SENDER))
    assert _responses(company).get().invitation_id == mine.pk
    # STOP to one company leaves the other's permission alone.
    reply(client, "STOP", to="+14155550200")
    assert Suppression.objects.for_company(other_company).filter(address=ANN).exists()
    assert not Suppression.objects.for_company(company).exists()


def test_the_latest_open_invitation_of_the_number_gets_the_reply(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    survey = active_survey(company)
    older = invite(company, survey=survey)
    newer = invite(company, survey=active_survey(company, name="second"), force=True)
    assert older.pk != newer.pk
    reply(client, "7")
    assert _responses(company).get().invitation_id == newer.pk


# --- STOP, START, HELP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "Unsubscribe", "CANCEL", "end", "QUIT", "СТОП", "Отписаться."]
)
def test_stop_words_suppress_the_number_for_the_company_and_confirm(
    client: Client, company: Company, word: str
) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    (confirmation,) = messages_of(reply(client, word))
    assert company.name in confirmation
    assert "START" in confirmation
    stopped = Suppression.objects.for_company(company).get()
    assert (stopped.channel, stopped.address, stopped.reason) == ("sms", ANN, "stopped")
    assert not _responses(company).exists()
    # The next invitation to the number is suppressed, never sent.
    again, outcome = invitation_trigger(
        company=company,
        survey=active_survey(company, name="next"),
        phone=ANN,
        channel=Channel.SMS,
        force=True,
    )
    assert (again, outcome) == (None, "suppressed")


def test_start_lifts_the_stop_and_help_names_the_company(client: Client, company: Company) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    reply(client, "STOP")
    (started,) = messages_of(reply(client, "START"))
    assert "STOP" in started
    assert company.name in started
    assert not Suppression.objects.for_company(company).exists()
    reply(client, "STOP")
    messages_of(reply(client, "unstop"))
    assert not Suppression.objects.for_company(company).exists()
    (help_text,) = messages_of(reply(client, "HELP"))
    assert company.name in help_text
    assert "STOP" in help_text


def test_twilio_advanced_opt_out_is_recorded_without_a_second_reply(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    invite(company)
    assert messages_of(reply(client, "Stop", OptOutType="STOP")) == []
    assert Suppression.objects.for_company(company).filter(address=ANN).exists()
    assert messages_of(reply(client, "start", OptOutType="START")) == []
    assert not Suppression.objects.for_company(company).exists()


def test_whatsapp_replies_are_answered_like_sms(client: Client, company: Company) -> None:
    sms_ready(company, sender=SENDER)
    company.whatsapp_sender = "+14155238886"
    company.save(update_fields=["whatsapp_sender"])
    survey = active_survey(company)
    invitation, _outcome = invitation_trigger(
        company=company, survey=survey, phone=ANN, channel=Channel.WHATSAPP
    )
    assert invitation is not None
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    with twilio_fake() as fake:
        invitations_send(company=company, invitation_ids=[invitation.pk])
    assert fake.recipients == [f"whatsapp:{ANN}"]
    follow_up = messages_of(
        reply(client, "10", sender=f"whatsapp:{ANN}", to="whatsapp:+14155238886")
    )
    assert follow_up
    assert company.name in follow_up[0]
    answer = _responses(company).get()
    assert (answer.score, answer.channel, answer.invitation_id) == (10, "whatsapp", invitation.pk)


# --- Status callbacks -------------------------------------------------------------------------


def _status(client: Client, delivery: Delivery, status: str, **extra: str) -> Any:
    path = f"/twilio/status/?d={delivery.public_id}"
    params = {"MessageSid": delivery.provider_message_id, "MessageStatus": status, **extra}
    return signed_post(client, path, params)


def test_status_callbacks_move_the_ledger_and_the_invitation_timeline(
    client: Client, company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    sms_ready(company, sender=SENDER)
    invitation = invite(company)
    delivery = _delivery_of(company, invitation)
    with django_capture_on_commit_callbacks(execute=True):
        assert _status(client, delivery, "delivered").status_code == 204
        assert _status(client, delivery, "sent").status_code == 204  # late: never backwards
    delivery.refresh_from_db()
    invitation.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert invitation.delivered_at is not None
    events = InvitationEvent.objects.for_company(company).filter(invitation=invitation)
    assert "delivered" in set(events.values_list("event", flat=True))
    assert list(delivery.events.values_list("event", flat=True)) == ["delivered", "sent"]


def test_an_undelivered_callback_for_an_unsubscribed_number_suppresses_it(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    invitation = invite(company)
    delivery = _delivery_of(company, invitation)
    assert _status(client, delivery, "undelivered", ErrorCode="21610").status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED
    assert "21610" in delivery.error
    assert Suppression.objects.for_company(company).get().address == ANN


def test_a_status_callback_with_a_bad_signature_changes_nothing(
    client: Client, company: Company
) -> None:
    sms_ready(company, sender=SENDER)
    invitation = invite(company)
    delivery = _delivery_of(company, invitation)
    path = f"/twilio/status/?d={delivery.public_id}"
    params = {"MessageSid": delivery.provider_message_id, "MessageStatus": "delivered"}
    # Signed for another delivery's URL: the query string is part of what is signed.
    response = signed_post(client, path, params, signed_url=SITE + "/twilio/status/?d=other")
    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert not delivery.events.exists()


def test_contacts_are_matched_by_their_stored_number(client: Client, company: Company) -> None:
    """A reply comes from the E.164 number; contacts store E.164 too (normalised on input)."""
    sms_ready(company, sender=SENDER)
    invite(company, phone="+7 (701) 123-45-67")
    assert Contact.objects.for_company(company).get().phone == ANN
    reply(client, "5")
    assert _responses(company).get().score == 5


# --- The development outbox -------------------------------------------------------------------


@override_settings(SMS_PROVIDER="outbox", DEV_OUTBOX_ENABLED=True)
def test_the_whole_conversation_can_be_typed_in_the_development_outbox(
    client: Client, company: Company
) -> None:
    """No sender, no Twilio: the invitation lands in the outbox from dev:<slug>; replies typed
    there go through the signed webhook and Twilio's answers come back into the outbox."""
    from notifications.models import OutboxMessage

    survey = active_survey(company)
    invitation, _outcome = invitation_trigger(
        company=company, survey=survey, phone=ANN, name="Ann", channel=Channel.SMS
    )
    assert invitation is not None
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    invitations_send(company=company, invitation_ids=[invitation.pk])
    sent = OutboxMessage.objects.get()
    assert sent.channel == "sms"
    assert sent.to == ANN
    assert sent.headers["From"] == f"dev:{company.slug}"
    page = client.get("/dev/outbox/").content.decode()
    assert f"/dev/outbox/{sent.id}/reply" in page

    def type_reply(text: str) -> list[str]:
        latest = OutboxMessage.objects.filter(to=ANN).order_by("-created_at", "-id").first()
        assert latest is not None
        before = set(OutboxMessage.objects.values_list("id", flat=True))
        response = client.post(f"/dev/outbox/{latest.id}/reply", {"body": text})
        assert response.status_code == 302
        new = OutboxMessage.objects.exclude(id__in=before).order_by("created_at", "id")
        typed = [m for m in new if m.headers.get("From") == ANN]
        assert [m.text for m in typed] == [text]
        return [m.text for m in new if m.to == ANN]

    assert type_reply("9") == [f"Great to hear! What do you like most about {company.name}?"]
    assert type_reply("Friendly staff") == [
        f"Thank you for your feedback! It helps {company.name} get better."
    ]
    answer = _responses(company).get()
    assert (answer.score, answer.comment, answer.channel) == (9, "Friendly staff", "sms")
    assert "START" in type_reply("STOP")[0]
    assert Suppression.objects.for_company(company).filter(address=ANN).exists()


def test_the_outbox_reply_is_off_outside_the_embedded_default(client: Client) -> None:
    from notifications.services import outbox_record

    stored = outbox_record(channel="sms", to=ANN, text="hi", headers={"From": "dev:x"})
    with override_settings(DEV_OUTBOX_ENABLED=False):
        assert client.post(f"/dev/outbox/{stored.id}/reply", {"body": "9"}).status_code == 404


def test_a_company_with_its_own_twilio_account_is_verified_with_its_token(
    client: Client, company: Company
) -> None:
    from companies.services import company_twilio_account_set

    sms_ready(company, sender=SENDER)
    invite(company)
    company_twilio_account_set(company=company, account_sid="AC" + "7" * 32, auth_token="own")
    params = {"From": ANN, "To": SENDER, "Body": "8", "MessageSid": f"SM{uuid.uuid4().hex}"}
    # Signed with the platform's token: not this company's account.
    assert signed_post(client, INBOUND, params).status_code == 403
    assert not _responses(company).exists()
    own = RequestValidator("own").compute_signature(SITE + INBOUND, params)
    assert messages_of(signed_post(client, INBOUND, params, signature=own))
    assert _responses(company).get().score == 8


# --- The keywords each language names --------------------------------------------------------

# A keyword the texts tell people to send: a word in capitals (STOP, СТОП, СТАРТ).
_NAMED_KEYWORD = re.compile(r"\b[A-ZА-ЯЁӘІҢҒҮҰҚӨҺ]{4,}\b")


def _named_keywords(language: str) -> set[str]:
    return {k for text in SMS_TEXTS[language].values() for k in _NAMED_KEYWORD.findall(text)}


def test_every_keyword_the_texts_name_is_understood_and_russian_and_kazakh_agree() -> None:
    # The Kazakh texts said "STOP" where the Russian said "СТОП", and Russian named "START".
    understood = STOP_WORDS | START_WORDS | HELP_WORDS
    for language in SMS_TEXTS:
        named = _named_keywords(language)
        assert named, language
        assert {k.casefold() for k in named} <= understood, (language, named)
    assert _named_keywords("ru") == _named_keywords("kk") == {"СТОП", "СТАРТ"}


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_the_keywords_a_russian_or_kazakh_text_names_work_when_sent_back(
    client: Client, company: Company, language: str
) -> None:
    sms_ready(company, sender=SENDER)
    with twilio_fake() as fake:
        invitation, _outcome = invitation_trigger(
            company=company,
            survey=active_survey(company),
            phone=ANN,
            name="Ann",
            channel=Channel.SMS,
            language=language,
        )
        assert invitation is not None
        invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
        invitations_send(company=company, invitation_ids=[invitation.pk])
    [sent] = [str(form["Body"]) for form in fake.requests]
    [stop] = _NAMED_KEYWORD.findall(sent)
    (confirmation,) = messages_of(reply(client, stop))
    assert Suppression.objects.for_company(company).filter(address=ANN).exists()
    [start] = _NAMED_KEYWORD.findall(confirmation)
    (started,) = messages_of(reply(client, start))
    assert not Suppression.objects.for_company(company).exists()
    assert stop in started
