"""The stale sweep: invitations stuck in queued (lost message) or sending (killed worker),
expansions that stopped, and calls whose outcome is unknown."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.utils import timezone

from companies.models import Company
from notifications.models import Delivery
from surveys import tasks
from surveys.models import (
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationEvent,
    InvitationStatus,
)
from surveys.services.campaigns import campaign_create, campaign_expand
from surveys.services.dispatch import (
    REWAKE_EXPANSION_AFTER,
    REWAKE_QUEUED_AFTER,
    SEND_LEASE,
    call_deadline,
    invitations_dispatch_due,
    invitations_sweep_stale,
)
from surveys.services.send import _claim, invitations_send
from surveys.tests.sending_factories import active_survey, contacts, postmark

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

CaptureOnCommit = Callable[..., AbstractContextManager[Any]]


class WorkerKilled(BaseException):
    """Stands for SIGKILL in the middle of a send task."""


def _queued(company: Company, count: int) -> tuple[Campaign, list[Invitation]]:
    """``count`` invitations of a campaign, dispatched (queued) at the frozen time; their
    send messages are lost (on_commit callbacks do not run here)."""
    survey = active_survey(company)
    contacts(company, count)
    campaign = campaign_create(company=company, survey=survey, audience={"all": True})
    campaign = campaign_expand(company=company, campaign_id=campaign.pk)
    assert invitations_dispatch_due(now=timezone.now() + timedelta(seconds=1)) == count
    rows = list(Invitation.objects.for_company(company).order_by("pk"))
    assert {i.status for i in rows} == {InvitationStatus.QUEUED}
    return campaign, rows


def test_stale_queued_is_enqueued_again_and_sent_once(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        campaign, (invitation,) = _queued(company, 1)  # its send message is "lost"
        clock.shift(REWAKE_QUEUED_AFTER - timedelta(seconds=1))
        with postmark() as fake, django_capture_on_commit_callbacks(execute=True):
            assert invitations_sweep_stale().requeued == 0  # not stale yet
        assert fake.calls == []
        clock.shift(timedelta(seconds=2))
        with postmark() as fake, django_capture_on_commit_callbacks(execute=True):
            assert invitations_sweep_stale().requeued == 1
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.SENT
        assert fake.recipients == [invitation.contact.email]
        # The lost message turns up after all, and the sweep runs again: nothing more sent.
        with postmark() as late, django_capture_on_commit_callbacks(execute=True):
            assert invitations_send(company=company, invitation_ids=[invitation.pk]).claimed == 0
            clock.shift(REWAKE_QUEUED_AFTER * 2)
            assert invitations_sweep_stale().requeued == 0
        assert late.calls == []
    assert Delivery.objects.for_company(company).count() == 1
    assert InvitationEvent.objects.for_company(company).filter(event="requeued").count() == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def test_the_dispatch_beat_task_runs_the_sweep(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _campaign, (invitation,) = _queued(company, 1)
        clock.shift(REWAKE_QUEUED_AFTER + timedelta(minutes=1))
        with postmark(), django_capture_on_commit_callbacks(execute=True):
            tasks.dispatch_due.apply()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT


def test_stale_sending_with_a_sent_delivery_becomes_sent(company: Company) -> None:
    with time_machine.travel(START, tick=False) as clock:
        campaign, (invitation,) = _queued(company, 1)
        # The provider takes the email, then the worker dies before recording the result.
        with (
            postmark() as fake,
            mock.patch("surveys.services.send.record_results", side_effect=WorkerKilled),
            pytest.raises(WorkerKilled),
        ):
            invitations_send(company=company, invitation_ids=[invitation.pk])
        invitation.refresh_from_db()
        assert (invitation.status, invitation.delivery_id) == (InvitationStatus.SENDING, None)
        delivery = Delivery.objects.for_company(company).get()
        assert delivery.status == "sent"
        clock.shift(SEND_LEASE - timedelta(seconds=1))
        assert invitations_sweep_stale().sent == 0
        clock.shift(timedelta(seconds=2))
        with postmark() as again:
            outcome = invitations_sweep_stale()
    assert (outcome.sent, outcome.failed, outcome.requeued) == (1, 0, 0)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert invitation.delivery_id == delivery.pk
    assert invitation.sent_at is not None
    assert len(fake.calls) == 1
    assert again.calls == []  # never sent a second time
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def test_stale_sending_never_handed_over_is_sent_again_once(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A worker died after its claim: before the ledger row was written, or after it (still
    ``queued``). Neither reached the provider: both are sent, once, within the lease."""
    with time_machine.travel(START, tick=False) as clock:
        campaign, (claimed_only, ledgered) = _queued(company, 2)
        assert _claim(company=company, invitation_ids=[claimed_only.pk], reminder=False)
        with (
            postmark() as first,
            mock.patch("notifications.email._send_batch", side_effect=WorkerKilled),
            pytest.raises(WorkerKilled),
        ):
            invitations_send(company=company, invitation_ids=[ledgered.pk])
        assert Delivery.objects.for_company(company).get().status == "queued"
        clock.shift(SEND_LEASE - timedelta(seconds=1))
        assert invitations_sweep_stale().requeued == 0  # the worker may still be at it
        clock.shift(timedelta(seconds=2))
        with postmark() as fake, django_capture_on_commit_callbacks(execute=True):
            outcome = invitations_sweep_stale()
    assert outcome.requeued == 2
    assert first.calls == []
    assert sorted(fake.recipients) == sorted(
        [str(claimed_only.contact.email), str(ledgered.contact.email)]
    )
    for invitation in (claimed_only, ledgered):
        invitation.refresh_from_db()
        assert (invitation.status, invitation.attempts) == (InvitationStatus.SENT, 1)
    assert Delivery.objects.for_company(company).count() == 2  # the ledger row was reused
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def test_a_read_timeout_is_looked_up_never_resent_blindly(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """The provider took the batch and its answer was lost: nothing is retried; once the
    call cannot be running any more, Postmark's search finds the messages: sent, once."""
    with time_machine.travel(START, tick=False) as clock:
        campaign, rows = _queued(company, 3)
        with postmark() as fake, django_capture_on_commit_callbacks(execute=True):
            fake.lose_answers = True
            sent = invitations_send(company=company, invitation_ids=[r.pk for r in rows])
            assert (sent.sent, sent.failed) == (0, 0)
            for invitation in rows:
                invitation.refresh_from_db()
                assert invitation.status == InvitationStatus.SENDING
                assert invitation.delivery_id is not None
            fake.lose_answers = False
            clock.shift(SEND_LEASE + timedelta(seconds=1))
            assert invitations_sweep_stale().sent == 0  # the call might still be running
            assert fake.searches == []
            clock.shift(call_deadline())
            outcome = invitations_sweep_stale()
    assert (outcome.sent, outcome.requeued, outcome.failed) == (3, 0, 0)
    assert len(fake.searches) == 3  # one per call: without the bulk API, one call per email
    assert sorted(fake.recipients) == sorted(str(r.contact.email) for r in rows)  # once each
    for invitation in rows:
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.SENT
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def test_an_unknown_outcome_the_provider_never_got_is_sent(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """A worker died during the call (the ledger row ``sending``) and Postmark has nothing
    with that call's reference: the message is sent again, once."""
    with time_machine.travel(START, tick=False) as clock:
        _campaign, (invitation,) = _queued(company, 1)
        with (
            postmark(),
            mock.patch(
                "anymail.backends.postmark.EmailBackend.send_messages", side_effect=WorkerKilled
            ),
            pytest.raises(WorkerKilled),
        ):
            invitations_send(company=company, invitation_ids=[invitation.pk])
        delivery = Delivery.objects.for_company(company).get()
        assert (delivery.status, bool(delivery.call_ref)) == ("sending", True)
        clock.shift(SEND_LEASE + call_deadline())
        with postmark() as fake, django_capture_on_commit_callbacks(execute=True):
            outcome = invitations_sweep_stale()
    assert outcome.requeued == 1
    assert [s["metadata_nps_call"] for s in fake.searches] == [delivery.call_ref]
    assert fake.recipients == [invitation.contact.email]
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert Delivery.objects.for_company(company).get().status == "sent"


def test_an_unknown_outcome_without_a_lookup_is_shown_not_resent(
    company: Company, settings: Any
) -> None:
    """A provider that cannot be asked (here SMTP): the row is "unknown" and the invitation
    fails with that reason, for a person to decide; nothing is sent again."""
    with time_machine.travel(START, tick=False) as clock:
        _campaign, (invitation,) = _queued(company, 1)
        assert _claim(company=company, invitation_ids=[invitation.pk], reminder=False)
        delivery = Delivery.objects.create(
            company=company,
            channel="email",
            to=str(invitation.contact.email),
            provider="smtp",
            status="sending",
            call_ref="abc",
            metadata={"invitation": invitation.public_id, "message": "invitation"},
        )
        clock.shift(SEND_LEASE + call_deadline())
        outcome = invitations_sweep_stale()
    assert (outcome.failed, outcome.requeued) == (1, 0)
    delivery.refresh_from_db()
    assert delivery.status == "unknown"
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.FAILED
    assert "cannot be asked" in invitation.failed_reason


def test_a_stopped_expansion_is_woken_again(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        survey = active_survey(company)
        contacts(company, 3)
        campaign = campaign_create(company=company, survey=survey, audience={"all": True})
        # Its expansion message is lost (not run: on_commit callbacks are not executed).
        clock.shift(REWAKE_EXPANSION_AFTER - timedelta(seconds=1))
        assert invitations_sweep_stale().expansions == 0
        clock.shift(timedelta(seconds=2))
        with postmark() as fake, django_capture_on_commit_callbacks(execute=True):
            assert invitations_sweep_stale().expansions == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE
    assert len(fake.recipients) == 3


def test_fresh_rows_are_left_alone(company: Company, other_company: Company) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _c1, (sending,) = _queued(company, 1)
        assert _claim(company=company, invitation_ids=[sending.pk], reminder=False)
        clock.shift(SEND_LEASE - timedelta(seconds=1))  # sending: still in time
        _c2, (queued,) = _queued(other_company, 1)  # queued just now
        outcome = invitations_sweep_stale()
    assert (outcome.requeued, outcome.sent, outcome.failed) == (0, 0, 0)
    sending.refresh_from_db()
    queued.refresh_from_db()
    assert sending.status == InvitationStatus.SENDING
    assert queued.status == InvitationStatus.QUEUED


def test_the_sweep_is_bounded_per_run(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit, monkeypatch: Any
) -> None:
    """At most batch_size × REWAKE_QUEUED_FACTOR queued rows per run (here a factor of 1),
    each woken at most once per REWAKE_QUEUED_AFTER."""
    from surveys.services import dispatch

    monkeypatch.setattr(dispatch, "REWAKE_QUEUED_FACTOR", 1)
    with time_machine.travel(START, tick=False) as clock:
        _queued(company, 3)
        clock.shift(REWAKE_QUEUED_AFTER + timedelta(seconds=1))
        with django_capture_on_commit_callbacks() as enqueued:
            assert invitations_sweep_stale(batch_size=2).requeued == 2
            assert invitations_sweep_stale(batch_size=2).requeued == 1
            assert invitations_sweep_stale(batch_size=2).requeued == 0  # stamped again
    assert len(enqueued) == 2


def test_the_ledger_sweep_settles_any_unknown_outcome(company: Company) -> None:
    """Not only invitations: any row left mid-call (here an alert email whose answer was
    lost) is looked up by the ledger's own beat job, and a found one becomes sent."""
    from notifications.email import OutgoingEmail, email_send
    from notifications.transport import deliveries_resolve_due

    email = OutgoingEmail(to="agent@acme.test", subject="Alert", text="A detractor", html="")
    with time_machine.travel(START, tick=False) as clock, postmark() as fake:
        fake.lose_answers = True
        (row,) = email_send(company=company, emails=[email])
        assert row.status == "sending"
        fake.lose_answers = False
        assert deliveries_resolve_due() == 0  # the call might still be running
        clock.shift(call_deadline() + timedelta(seconds=1))
        assert deliveries_resolve_due() == 1
        assert deliveries_resolve_due() == 0
    row.refresh_from_db()
    assert (row.status, row.provider_message_id) == ("sent", f"msg-{abs(hash(email.to))}")
    assert fake.recipients == [email.to]
