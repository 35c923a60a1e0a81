"""Campaign expansion, the dispatcher, claim-before-send, reminders, delay, provider errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone

from companies.models import Company
from notifications.models import Channel, Delivery, SuppressionReason
from notifications.services import suppression_add
from surveys import tasks
from surveys.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    SurveyKind,
)
from surveys.services.campaigns import _sampled_in, campaign_create, campaign_expand
from surveys.services.dispatch import invitations_dispatch_due, reminders_dispatch_due
from surveys.services.invitations import invitation_mark_answered
from surveys.services.links import answer_url
from surveys.services.send import invitations_send
from surveys.services.triggers import invitation_trigger
from surveys.tests.sending_factories import active_survey, contacts, postmark
from surveys.tokens import token_hash

pytestmark = pytest.mark.django_db


def _campaign(company: Company, survey: Any, **kwargs: Any) -> Campaign:
    campaign = campaign_create(company=company, survey=survey, audience={"all": True}, **kwargs)
    return campaign_expand(company=company, campaign_id=campaign.pk)


def _invitations(company: Company, **filters: Any) -> Any:
    return Invitation.objects.for_company(company).filter(**filters)


def _send_all(company: Company) -> None:
    """Dispatch what is due and run the send tasks it enqueued (inline)."""
    ids = list(
        _invitations(company, status=InvitationStatus.SCHEDULED).values_list("pk", flat=True)
    )
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    invitations_send(company=company, invitation_ids=ids)


def test_campaign_of_a_draft_survey_is_refused(company: Company) -> None:
    from django.core.exceptions import ValidationError

    from surveys.services.surveys import survey_create

    draft = survey_create(company=company, name="Draft")
    with pytest.raises(ValidationError) as info:
        campaign_create(company=company, survey=draft, audience={"all": True})
    assert "draft" in str(info.value.message_dict["survey"][0])
    assert not Campaign.objects.for_company(company).exists()


def test_expansion_counts_suppressed_throttled_and_invites_the_rest(company: Company) -> None:
    survey = active_survey(company)
    people = contacts(company, 6)
    Contact.objects.create(company=company, phone="+77011234567")  # no email: suppressed
    suppression_add(
        company=company,
        channel=Channel.EMAIL,
        address=people[0].email or "",
        reason=SuppressionReason.UNSUBSCRIBED,
    )
    # people[1] was surveyed 10 days ago by another NPS survey: throttled (90 days).
    other = active_survey(company, name="Other")
    invitation, outcome = invitation_trigger(company=company, survey=other, email=people[1].email)
    assert outcome == "created"
    assert invitation is not None
    _invitations(company, pk=invitation.pk).update(
        status=InvitationStatus.SENT, sent_at=timezone.now() - timedelta(days=10)
    )
    campaign = _campaign(company, survey)
    assert campaign.status == CampaignStatus.SENDING
    assert (campaign.targeted, campaign.suppressed, campaign.throttled, campaign.sampled_out) == (
        7,
        2,
        1,
        0,
    )
    invited = set(_invitations(company, campaign=campaign).values_list("contact__email", flat=True))
    assert invited == {p.email for p in people[2:]}
    first = _invitations(company, campaign=campaign).first()
    assert first is not None
    assert first.status == InvitationStatus.SCHEDULED
    assert first.token_hash != ""
    assert (
        InvitationEvent.objects.for_company(company)
        .filter(invitation=first, event="scheduled")
        .exists()
    )


def test_enps_does_not_throttle_nps(company: Company) -> None:
    nps = active_survey(company)
    enps = active_survey(company, kind=SurveyKind.ENPS)
    (person,) = contacts(company, 1)
    _invitation, outcome = invitation_trigger(company=company, survey=enps, email=person.email)
    assert outcome == "created"
    campaign = _campaign(company, nps)
    assert (campaign.throttled, _invitations(company, campaign=campaign).count()) == (0, 1)
    # A second NPS survey is throttled by the first NPS one (scheduled counts too).
    again = _campaign(company, active_survey(company, name="NPS 2"))
    assert again.throttled == 1


def test_throttle_window_ends(company: Company) -> None:
    survey = active_survey(company, throttle_days=30)
    (person,) = contacts(company, 1)
    invitation, _ = invitation_trigger(company=company, survey=survey, email=person.email)
    assert invitation is not None
    _invitations(company, pk=invitation.pk).update(
        status=InvitationStatus.SENT, sent_at=timezone.now() - timedelta(days=31)
    )
    _again, outcome = invitation_trigger(company=company, survey=survey, email=person.email)
    assert outcome == "created"
    _third, outcome = invitation_trigger(company=company, survey=survey, email=person.email)
    assert outcome == "throttled"
    forced, outcome = invitation_trigger(
        company=company, survey=survey, email=person.email, force=True
    )
    assert outcome == "created"
    assert forced is not None


def test_sampling_is_deterministic_and_near_the_share(company: Company) -> None:
    survey = active_survey(company, sample_percent=30)
    contacts(company, 400)
    campaign = _campaign(company, survey)
    invited = _invitations(company, campaign=campaign).count()
    assert campaign.sampled_out + invited == 400
    # Binomial(400, 0.3): mean 120, sd ≈ 9.2. Public ids are random, so allow ±6 sd; the bounds
    # still fail if sampling is off (400) or inverted (280).
    assert 65 <= invited <= 175
    # The same (campaign, contact) always gets the same answer.
    for contact in Contact.objects.for_company(company)[:50]:
        answers = {
            _sampled_in(
                campaign_public_id=campaign.public_id,
                contact_public_id=contact.public_id,
                percent=30,
            )
            for _ in range(3)
        }
        assert len(answers) == 1
        assert answers.pop() == _invitations(company, campaign=campaign, contact=contact).exists()


def test_expansion_is_chunked_with_constant_queries(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surveys.services import campaigns as services

    survey = active_survey(company)
    monkeypatch.setattr(services, "EXPAND_CHUNK_SIZE", 10)
    contacts(company, 10)
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    with CaptureQueriesContext(connection) as small:
        campaign_expand(company=company, campaign_id=campaign.pk)
    contacts(company, 40, prefix="more")
    campaign2 = campaign_create(
        company=company, survey=active_survey(company, kind="enps"), audience={"all": True}
    )
    with CaptureQueriesContext(connection) as large:
        campaign2 = campaign_expand(company=company, campaign_id=campaign2.pk)
    assert campaign2.targeted == 50
    assert _invitations(company, campaign=campaign2).count() == 50
    # 5 chunks + the empty one vs 1 chunk + the empty one: per-chunk cost is constant.
    per_chunk_small = len(small.captured_queries)
    assert len(large.captured_queries) <= per_chunk_small * 5


def test_dispatcher_queues_due_and_skips_future_and_paused(company: Company) -> None:
    survey = active_survey(company)
    contacts(company, 3)
    now = timezone.now()
    later = campaign_create(
        company=company,
        survey=survey,
        audience={"all": True},
        scheduled_for=now + timedelta(hours=2),
    )
    assert later.status == CampaignStatus.SCHEDULED
    assert invitations_dispatch_due(now=now) == 0
    later.refresh_from_db()
    assert later.status == CampaignStatus.SCHEDULED  # not due yet
    with time_machine.travel(now + timedelta(hours=2, seconds=1), tick=False):
        invitations_dispatch_due()  # starts the expansion (run inline, tasks are eager)
    later.refresh_from_db()
    # eager mode: the expand task ran on commit only if there is a commit; run it here.
    campaign_expand(company=company, campaign_id=later.pk)
    assert _invitations(company, campaign=later, status=InvitationStatus.SCHEDULED).count() == 3
    from surveys.services.surveys import survey_set_status

    survey_set_status(company=company, survey=survey, status="paused")
    assert invitations_dispatch_due(now=now + timedelta(hours=3)) == 0
    survey_set_status(company=company, survey=survey, status="active")
    assert invitations_dispatch_due(now=now + timedelta(hours=3)) == 3
    assert _invitations(company, status=InvitationStatus.QUEUED).count() == 3


def test_send_through_postmark_records_sent_and_links(company: Company) -> None:
    survey = active_survey(company)
    people = contacts(company, 3)
    campaign = _campaign(company, survey)
    with postmark() as fake:
        _send_all(company)
    assert sorted(fake.recipients) == sorted(str(p.email) for p in people)
    sent = list(_invitations(company, campaign=campaign))
    assert {i.status for i in sent} == {InvitationStatus.SENT}
    assert all(i.delivery_id and i.sent_at and i.attempts == 1 for i in sent)
    # Each email carries its own score links and unsubscribe header.
    by_to = {p["To"]: p for _url, p in fake.calls}
    invitation = sent[0]
    payload = by_to[invitation.contact.email]
    assert answer_url(invitation, 9) in payload["HtmlBody"]
    assert answer_url(invitation) in payload["TextBody"]
    headers = {h["Name"]: h["Value"] for h in payload["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE
    # The link resolves to this invitation.
    token = answer_url(invitation).rstrip("/").rsplit("/", 1)[1]
    assert token_hash(token) == invitation.token_hash
    # The buttons append the score to the one merged link: each lands on its score's route.
    for score in range(11):
        match = resolve(urlsplit(answer_url(invitation, score)).path)
        assert (match.url_name, match.kwargs) == ("answer-score", {"token": token, "score": score})


def test_a_second_send_call_sends_nothing(company: Company) -> None:
    survey = active_survey(company)
    contacts(company, 2)
    _campaign(company, survey)
    ids = list(_invitations(company).values_list("pk", flat=True))
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    first = invitations_send(company=company, invitation_ids=ids)
    again = invitations_send(company=company, invitation_ids=ids)  # a redelivered task
    assert (first.sent, again.claimed) == (2, 0)
    assert Delivery.objects.for_company(company).count() == 2
    # One batch message to both (the locmem backend keeps it as one message with two "to").
    assert sorted(a for m in mail.outbox for a in m.to) == [
        "person0@example.com",
        "person1@example.com",
    ]


def test_transient_error_requeues_then_the_retry_sends_once(company: Company) -> None:
    survey = active_survey(company)
    (person,) = contacts(company, 1)
    _campaign(company, survey)
    (invitation,) = _invitations(company)
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))
    replies = iter([(503, {"ErrorCode": 100, "Message": "Down"})])

    def flaky(payload: Any) -> tuple[int, Any]:
        return next(replies, None) or postmark_accept(payload)

    from surveys.tests.sending_factories import FakePostmark

    postmark_accept = FakePostmark.accept
    with postmark(flaky) as fake:
        from notifications.transport import TransientSendError

        with pytest.raises(TransientSendError):
            invitations_send(company=company, invitation_ids=[invitation.pk])
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.QUEUED
        assert invitation.delivery_id is not None
        # The retry (here: the send task run again, as Celery's retry does) goes through.
        tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert invitation.attempts == 2
    assert fake.recipients == [person.email, person.email]  # one refused call, one accepted
    assert Delivery.objects.for_company(company).count() == 1  # the row was reused


def test_a_provider_outage_reschedules_with_backoff_then_gives_up(company: Company) -> None:
    """The provider cannot take the email (a 500): the invitation waits in the database for
    its next attempt with backoff (the dispatcher sends it when due), and after the last
    attempt it fails with the reason."""
    from surveys.services import send

    survey = active_survey(company)
    contacts(company, 1)
    _campaign(company, survey)
    (invitation,) = _invitations(company)
    now = timezone.now()
    waits = []
    with postmark(lambda payload: (500, {"ErrorCode": 100, "Message": "Down"})) as fake:
        for attempt in range(1, send.SEND_MAX_ATTEMPTS + 1):
            now += timedelta(hours=1)
            assert invitations_dispatch_due(now=now) == 1
            tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
            invitation.refresh_from_db()
            assert invitation.attempts == attempt
            if attempt < send.SEND_MAX_ATTEMPTS:
                assert invitation.status == InvitationStatus.SCHEDULED
                waits.append((invitation.scheduled_for - timezone.now()).total_seconds())
    assert invitation.status == InvitationStatus.FAILED
    assert "gave up" in invitation.failed_reason
    assert len(fake.calls) == send.SEND_MAX_ATTEMPTS
    # Exponential with jitter: each wait at least half its step, and growing to the cap.
    for attempts, wait in enumerate(waits, start=1):
        step = min(send.SEND_BACKOFF_MAX, send.SEND_BACKOFF_BASE * 2 ** (attempts - 1))
        assert step / 2 - 1 <= wait <= step + 1


def test_permanent_recipient_error_fails_with_the_reason(company: Company) -> None:
    survey = active_survey(company)
    contacts(company, 1)
    _campaign(company, survey)
    (invitation,) = _invitations(company)
    invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1))

    def inactive(payload: Any) -> tuple[int, Any]:
        return 422, {
            "ErrorCode": 406,
            "Message": (
                "You tried to send to a recipient that has been marked as inactive.\n"
                f"Found inactive addresses: {payload['To']}.\n"
                "Inactive recipients are ones that have generated a hard bounce or a spam "
                "complaint."
            ),
        }

    with postmark(inactive) as fake:
        tasks.send_invitations.apply(args=(company.pk, [invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.FAILED
    assert invitation.failed_reason
    assert len(fake.calls) == 1  # never retried


def test_suppressed_after_scheduling_is_not_sent(company: Company) -> None:
    survey = active_survey(company)
    (person,) = contacts(company, 1)
    _campaign(company, survey)
    suppression_add(
        company=company,
        channel=Channel.EMAIL,
        address=person.email or "",
        reason=SuppressionReason.BOUNCED,
    )
    _send_all(company)
    (invitation,) = _invitations(company)
    assert invitation.status == InvitationStatus.SUPPRESSED
    assert mail.outbox == []


def test_delay_is_sent_by_the_dispatcher_only_when_due(company: Company) -> None:
    survey = active_survey(company)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        invitation, outcome = invitation_trigger(
            company=company, survey=survey, email="late@example.com", delay=3600
        )
    assert outcome == "created"
    assert invitation is not None
    assert invitation.scheduled_for == start + timedelta(seconds=3600)
    with time_machine.travel(start + timedelta(minutes=59), tick=False):
        assert invitations_dispatch_due() == 0
    with time_machine.travel(start + timedelta(minutes=60, seconds=1), tick=False):
        assert invitations_dispatch_due() == 1
        invitations_send(company=company, invitation_ids=[invitation.pk])
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert [m.to for m in mail.outbox] == [["late@example.com"]]


def test_reminder_after_n_days_only_to_non_answerers(company: Company) -> None:
    survey = active_survey(company, reminder_after_days=3)
    contacts(company, 3)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _campaign(company, survey)
        _send_all(company)
    answered, unanswered, unsubscribed = list(_invitations(company).order_by("pk"))
    assert invitation_mark_answered(invitation=answered)
    assert not invitation_mark_answered(invitation=answered)  # once
    suppression_add(
        company=company,
        channel=Channel.EMAIL,
        address=unsubscribed.contact.email or "",
        reason=SuppressionReason.UNSUBSCRIBED,
    )
    mail.outbox.clear()
    with time_machine.travel(start + timedelta(days=2, hours=23), tick=False):
        assert reminders_dispatch_due() == 0
    with time_machine.travel(start + timedelta(days=3, minutes=1), tick=False):
        assert reminders_dispatch_due() == 2
        outcome = invitations_send(
            company=company, invitation_ids=[unanswered.pk, unsubscribed.pk], reminder=True
        )
        again = invitations_send(
            company=company, invitation_ids=[unanswered.pk, unsubscribed.pk], reminder=True
        )
        assert reminders_dispatch_due() == 0  # one reminder per invitation
    assert (outcome.sent, outcome.suppressed, again.claimed) == (1, 1, 0)
    (message,) = mail.outbox
    assert message.to == [unanswered.contact.email]
    unanswered.refresh_from_db()
    assert unanswered.reminder_sent_at is not None
    assert answer_url(unanswered) in str(message.body)  # the same link again


def test_provider_news_goes_on_the_invitation_timeline(company: Company) -> None:
    from notifications.signals import message_status_changed

    survey = active_survey(company)
    contacts(company, 1)
    _campaign(company, survey)
    _send_all(company)
    (invitation,) = _invitations(company)
    when = timezone.now()
    for status in ("delivered", "opened", "opened"):
        message_status_changed.send(
            sender=Delivery,
            company_id=company.pk,
            delivery_id=invitation.delivery_id,
            status=status,
            metadata={"invitation": invitation.public_id},
            occurred_at=when,
        )
    invitation.refresh_from_db()
    assert invitation.delivered_at == when
    assert invitation.opened_at == when
    events = list(
        InvitationEvent.objects.for_company(company)
        .filter(invitation=invitation)
        .values_list("event", flat=True)
    )
    assert events.count("opened") == 2
    assert "sent" in events
