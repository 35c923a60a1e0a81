"""SMS invitations: campaigns, the trigger, claim-before-send, texts and quiet hours.

Twilio is the real library with only its HTTP client replaced (notifications.tests.twilio_fake).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from companies.models import Company
from companies.services import company_sms_update
from notifications.models import Channel, Delivery, SuppressionReason
from notifications.services import suppression_add
from notifications.tests.twilio_fake import sms_ready, twilio_fake
from notifications.transport import TransientSendError
from surveys.models import Contact, Invitation, InvitationEvent, InvitationStatus
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.dispatch import invitations_dispatch_due
from surveys.services.links import answer_url, sms_answer_url
from surveys.services.send import invitations_send
from surveys.services.triggers import invitation_trigger
from surveys.sms import quiet_hours_until, recipient_time_zone
from surveys.tests.sending_factories import active_survey

pytestmark = pytest.mark.django_db

# Inside the default window (09:00-20:00) in Almaty (UTC+5), where Kazakh numbers are.
DAYTIME_KZ = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def _invitations(company: Company, **filters: Any) -> Any:
    return Invitation.objects.for_company(company).filter(**filters)


def _send_due(company: Company) -> None:
    ids = list(
        _invitations(company, status=InvitationStatus.SCHEDULED).values_list("pk", flat=True)
    )
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    invitations_send(company=company, invitation_ids=ids)


def _sms_campaign(company: Company, survey: Any) -> Any:
    campaign = campaign_create(
        company=company, survey=survey, audience={"all": True}, channel=Channel.SMS
    )
    return campaign_expand(company=company, campaign_id=campaign.pk)


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_sms_campaign_invites_contacts_with_a_phone_and_sends_one_text_each(
    company: Company,
) -> None:
    sms_ready(company, sender="+14155550100")
    survey = active_survey(company)
    ann = Contact.objects.create(company=company, phone="+77011234567", name="Ann")
    ivan = Contact.objects.create(company=company, phone="+77017654321", name="Иван", language="ru")
    Contact.objects.create(company=company, email="mail-only@example.com")
    stopped = Contact.objects.create(company=company, phone="+77019998877")
    suppression_add(
        company=company,
        channel=Channel.SMS,
        address=stopped.phone or "",
        reason=SuppressionReason.STOPPED,
    )
    campaign = _sms_campaign(company, survey)
    assert (campaign.targeted, campaign.suppressed) == (4, 2)  # no phone, STOPped
    invitations = list(_invitations(company).order_by("pk"))
    assert [i.contact_id for i in invitations] == [ann.pk, ivan.pk]
    assert {i.channel for i in invitations} == {Channel.SMS}
    with twilio_fake() as fake:
        _send_due(company)
        first, second = (_invitations(company).get(pk=i.pk) for i in invitations)
        links = [sms_answer_url(first), sms_answer_url(second)]
    assert fake.recipients == ["+77011234567", "+77017654321"]
    english, russian = (form["Body"] for form in fake.requests)
    assert links[0].startswith("https://nps.example.com/r/")
    assert english == (
        f"{company.name}: Hi Ann! How likely are you to recommend {company.name} to a friend "
        f"or colleague? Reply with a number from 0 to 10. Or answer here: {links[0]} "
        "Reply STOP to opt out."
    )
    assert russian.startswith(f"{company.name}: Здравствуйте, Иван! Насколько вероятно")
    assert "числом от 0 до 10" in russian
    assert links[1] in russian
    assert "СТОП" in russian
    assert {form["From"] for form in fake.requests} == {"+14155550100"}
    for invitation in (first, second):
        assert invitation.status == InvitationStatus.SENT
        delivery = Delivery.objects.for_company(company).get(pk=invitation.delivery_id)
        assert delivery.channel == Channel.SMS
        assert delivery.status == "sent"
        assert delivery.metadata["invitation"] == invitation.public_id
        events = InvitationEvent.objects.for_company(company).filter(invitation=invitation)
        assert list(events.values_list("event", flat=True).order_by("pk")) == [
            "scheduled",
            "sent",
        ]
    # A send task delivered again finds nothing to claim: nothing is sent twice.
    with twilio_fake() as again:
        invitations_send(company=company, invitation_ids=[i.pk for i in invitations])
    assert again.requests == []


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_trigger_with_channel_sms_sends_a_text(company: Company) -> None:
    sms_ready(company)
    survey = active_survey(company)
    invitation, outcome = invitation_trigger(
        company=company, survey=survey, phone="+77011234567", name="Ann", channel=Channel.SMS
    )
    assert outcome == "created"
    assert invitation is not None
    assert invitation.channel == Channel.SMS
    with twilio_fake() as fake:
        _send_due(company)
        link = sms_answer_url(invitation)
    assert fake.recipients == ["+77011234567"]
    assert link in str(fake.requests[0]["Body"])
    suppression_add(
        company=company,
        channel=Channel.SMS,
        address="+77011234567",
        reason=SuppressionReason.STOPPED,
    )
    assert invitation_trigger(
        company=company, survey=survey, phone="+77011234567", channel=Channel.SMS, force=True
    ) == (None, "suppressed")


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_a_transient_twilio_error_requeues_and_the_retry_sends_the_rest_once(
    company: Company,
) -> None:
    sms_ready(company)
    survey = active_survey(company)
    Contact.objects.create(company=company, phone="+77011234567")
    Contact.objects.create(company=company, phone="+77017654321")
    _sms_campaign(company, survey)
    ids = list(_invitations(company).order_by("pk").values_list("pk", flat=True))
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    with twilio_fake() as fake:
        fake.fail_for = {"+77017654321": (503, 20503)}
        with pytest.raises(TransientSendError):
            invitations_send(company=company, invitation_ids=ids)
        first, second = (_invitations(company).get(pk=pk) for pk in ids)
        assert first.status == InvitationStatus.SENT
        assert second.status == InvitationStatus.QUEUED
        assert second.delivery_id is not None
        fake.fail_for = {}
        invitations_send(company=company, invitation_ids=ids)
    assert fake.recipients == ["+77011234567", "+77017654321", "+77017654321"]
    assert _invitations(company, status=InvitationStatus.SENT).count() == 2
    assert Delivery.objects.for_company(company).count() == 2


def test_an_invalid_number_fails_the_invitation_for_good(company: Company) -> None:
    sms_ready(company)
    survey = active_survey(company)
    Contact.objects.create(company=company, phone="+77011234567")
    with time_machine.travel(DAYTIME_KZ, tick=False):
        _sms_campaign(company, survey)
        with twilio_fake() as fake:
            fake.fail_for = {"+77011234567": (400, 21211)}
            _send_due(company)
    invitation = _invitations(company).get()
    assert invitation.status == InvitationStatus.FAILED
    assert "invalid phone number" in invitation.failed_reason


# --- Quiet hours ------------------------------------------------------------------------------


def test_recipient_time_zone_contact_then_phone_region_then_company(company: Company) -> None:
    company.time_zone = "Europe/Moscow"
    tz_contact = Contact(company=company, phone="+12125550100", time_zone="Asia/Tokyo")
    new_york = Contact(company=company, phone="+12125550100")
    unknown_region = Contact(company=company, phone="+80012345678")  # international freephone
    assert str(recipient_time_zone(contact=tz_contact, company=company)) == "Asia/Tokyo"
    assert str(recipient_time_zone(contact=new_york, company=company)) == "America/New_York"
    assert str(recipient_time_zone(contact=unknown_region, company=company)) == "Europe/Moscow"


def test_quiet_hours_window_and_when_it_next_opens(company: Company) -> None:
    almaty = Contact(company=company, phone="+77011234567", time_zone="Asia/Almaty")
    at = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 21:00 in Almaty: after the window
    assert quiet_hours_until(contact=almaty, company=company, now=at) == datetime(
        2026, 6, 2, 4, 0, tzinfo=UTC
    )
    early = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)  # 07:30 in Almaty: before it
    assert quiet_hours_until(contact=almaty, company=company, now=early) == datetime(
        2026, 6, 1, 4, 0, tzinfo=UTC
    )
    assert quiet_hours_until(contact=almaty, company=company, now=DAYTIME_KZ) is None
    # A window across midnight (22:00-02:00): 23:00 is inside, 03:00 waits until 22:00.
    company.quiet_hours_start, company.quiet_hours_end = time(22, 0), time(2, 0)
    late = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # 23:00 in Almaty
    assert quiet_hours_until(contact=almaty, company=company, now=late) is None
    night = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # 03:00 on June 2 in Almaty
    assert quiet_hours_until(contact=almaty, company=company, now=night) == datetime(
        2026, 6, 2, 17, 0, tzinfo=UTC
    )


def test_messages_due_in_quiet_hours_wait_in_the_database_for_the_local_window(
    company: Company,
) -> None:
    """04:00 UTC: 09:00 in Almaty (sent), 00:00 in New York (waits until 13:00 UTC), 05:00
    in London (waits until 08:00 UTC); each goes when the dispatcher finds it due."""
    sms_ready(company)
    company.time_zone = "UTC"
    company.save(update_fields=["time_zone"])
    survey = active_survey(company)
    almaty = Contact.objects.create(company=company, phone="+77011234567", time_zone="Asia/Almaty")
    new_york = Contact.objects.create(company=company, phone="+12125550100")
    london = Contact.objects.create(company=company, phone="+447911123456")
    start = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        _sms_campaign(company, survey)
        with twilio_fake() as fake:
            _send_due(company)
    assert fake.recipients == ["+77011234567"]
    waiting = {i.contact_id: i for i in _invitations(company, status=InvitationStatus.SCHEDULED)}
    assert waiting[new_york.pk].scheduled_for == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert waiting[london.pk].scheduled_for == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert waiting[london.pk].attempts == 0  # waiting is not a failed attempt
    assert InvitationEvent.objects.for_company(company).filter(event="waiting").count() == 2
    assert _invitations(company, contact=almaty, status=InvitationStatus.SENT).exists()
    with (
        time_machine.travel(datetime(2026, 6, 1, 8, 0, 30, tzinfo=UTC), tick=False),
        twilio_fake() as fake,
    ):
        _send_due(company)
    assert fake.recipients == ["+447911123456"]
    with (
        time_machine.travel(datetime(2026, 6, 1, 13, 0, 30, tzinfo=UTC), tick=False),
        twilio_fake() as fake,
    ):
        _send_due(company)
    assert fake.recipients == ["+12125550100"]
    assert _invitations(company, status=InvitationStatus.SENT).count() == 3


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_whatsapp_invitations_use_the_companys_approved_template(company: Company) -> None:
    sms_ready(company)
    company.whatsapp_sender = "+14155238886"
    company.whatsapp_templates = {"en": "HX" + "e" * 32}
    company.save(update_fields=["whatsapp_sender", "whatsapp_templates"])
    survey = active_survey(company)
    invitation, _outcome = invitation_trigger(
        company=company, survey=survey, phone="+77011234567", name="Ann", channel="whatsapp"
    )
    assert invitation is not None
    with twilio_fake() as fake:
        _send_due(company)
        link = sms_answer_url(invitation)
    (form,) = fake.requests
    assert form["To"] == "whatsapp:+77011234567"
    assert form["From"] == "whatsapp:+14155238886"
    assert form["ContentSid"] == "HX" + "e" * 32
    assert json.loads(str(form["ContentVariables"])) == {"1": "Ann", "2": company.name, "3": link}
    assert "Body" not in form
    # The company maps the variables of its own template.
    company_sms_update(company=company, whatsapp_variables="1=link, 2=first_name, 4=survey")
    company.refresh_from_db()
    second, _outcome = invitation_trigger(
        company=company, survey=survey, phone="+77017654321", name="Bob Stone", channel="whatsapp"
    )
    assert second is not None
    with twilio_fake() as fake:
        _send_due(company)
        link = sms_answer_url(second)
    (form,) = fake.requests
    assert json.loads(str(form["ContentVariables"])) == {"1": link, "2": "Bob", "4": survey.name}


def test_an_sms_reminder_goes_once_and_waits_for_daytime(company: Company) -> None:
    from surveys.services.dispatch import reminders_dispatch_due

    sms_ready(company)
    survey = active_survey(company, reminder_after_days=3)
    Contact.objects.create(company=company, phone="+77011234567", time_zone="Asia/Almaty")
    with time_machine.travel(DAYTIME_KZ, tick=False):
        _sms_campaign(company, survey)
        with twilio_fake():
            _send_due(company)
    invitation = _invitations(company).get()
    # Three days later at 23:00 in Almaty: due, but inside quiet hours; the claim is undone.
    night = DAYTIME_KZ + timedelta(days=3, hours=12)
    with time_machine.travel(night, tick=False), twilio_fake() as fake:
        assert reminders_dispatch_due() == 1
        invitations_send(company=company, invitation_ids=[invitation.pk], reminder=True)
    assert fake.requests == []
    invitation.refresh_from_db()
    assert invitation.reminder_sent_at is None
    morning = DAYTIME_KZ + timedelta(days=4)
    with time_machine.travel(morning, tick=False), twilio_fake() as fake:
        assert reminders_dispatch_due() == 1
        invitations_send(company=company, invitation_ids=[invitation.pk], reminder=True)
        invitations_send(company=company, invitation_ids=[invitation.pk], reminder=True)
        link = sms_answer_url(invitation)
        assert reminders_dispatch_due() == 0
    assert fake.recipients == ["+77011234567"]  # once
    assert link in str(fake.requests[0]["Body"])  # the same link again


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_a_preferred_channel_campaign_uses_each_contacts_preference(company: Company) -> None:
    from django.core import mail

    sms_ready(company)
    survey = active_survey(company)
    wants_sms = Contact.objects.create(
        company=company,
        email="sms@example.com",
        phone="+77011234567",
        properties={"preferred_channel": "SMS"},
    )
    both = Contact.objects.create(company=company, email="both@example.com", phone="+77017654321")
    phone_only = Contact.objects.create(company=company, phone="+77019998877")
    no_address = Contact.objects.create(
        company=company, email="mail@example.com", properties={"preferred_channel": "sms"}
    )
    campaign = campaign_create(
        company=company, survey=survey, audience={"all": True}, channel="preferred"
    )
    campaign = campaign_expand(company=company, campaign_id=campaign.pk)
    channels = dict(_invitations(company).values_list("contact_id", "channel"))
    assert channels == {
        wants_sms.pk: "sms",
        both.pk: "email",
        phone_only.pk: "sms",
        no_address.pk: "email",  # prefers SMS but has no phone: email
    }
    with twilio_fake() as fake:
        _send_due(company)
    assert sorted(fake.recipients) == ["+77011234567", "+77019998877"]
    assert sorted(to for m in mail.outbox for to in m.to) == [
        "both@example.com",
        "mail@example.com",
    ]


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_the_trigger_can_use_the_contacts_preferred_channel(
    company: Company, client: Any, api_owner: Any
) -> None:
    sms_ready(company)
    survey = active_survey(company)
    url = f"/api/v1/surveys/{survey.public_id}/invitations/"
    body = {
        "email": "ann@example.com",
        "phone": "+77011234567",
        "properties": {"preferred_channel": "sms"},
        "channel": "preferred",
    }
    created = client.post(url, body, content_type="application/json", **api_owner.headers)
    assert created.status_code == 201, created.json()
    assert created.json()["channel"] == "sms"
    # No preference and an email address: email. Neither address: a field error.
    other = invitation_trigger(
        company=company, survey=survey, email="bob@example.com", channel="preferred"
    )
    assert other[0] is not None
    assert other[0].channel == "email"
    refused = client.post(
        url, {"channel": "preferred"}, content_type="application/json", **api_owner.headers
    )
    assert refused.status_code == 400
    assert "email" in refused.json()["error"]["fields"]


@time_machine.travel(DAYTIME_KZ, tick=False)
def test_a_text_carries_a_short_link_that_opens_the_same_answer_page(
    company: Company, client: Any
) -> None:
    sms_ready(company)
    survey = active_survey(company)
    invitation, _outcome = invitation_trigger(
        company=company, survey=survey, phone="+77011234567", channel=Channel.SMS
    )
    assert invitation is not None
    with twilio_fake() as fake:
        _send_due(company)
        short, long = sms_answer_url(invitation), answer_url(invitation)
    body = str(fake.requests[0]["Body"])
    assert short in body
    assert long not in body  # the long link would cost characters
    token = short.rstrip("/").rsplit("/", 1)[1]
    assert len(token) == 22  # 128 bits
    # The short link is the same invitation's answer page: its score link records there.
    page = client.get(f"/r/{token}/9/")
    assert page.status_code == 200
    posted = client.post(f"/r/{token}/", {"score": "9", "comment": "ok"})
    assert posted.status_code == 303
    assert posted["Location"].startswith(f"/r/{token}/thanks/")
    invitation.refresh_from_db()
    assert invitation.answered_at is not None
    # An email invitation has no short token; a made-up one leads nowhere.
    email_invitation, _ = invitation_trigger(company=company, survey=survey, email="a@b.test")
    assert email_invitation is not None
    assert email_invitation.short_token_hash is None
    assert client.get("/r/AAAAAAAAAAAAAAAAAAAAAA/").status_code == 404
