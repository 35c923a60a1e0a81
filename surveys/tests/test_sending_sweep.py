"""The stale sweep: invitations stuck in queued (lost message) or sending (killed worker)."""

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
    STALE_QUEUED_AFTER,
    STALE_SENDING_AFTER,
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
    """``count`` invitations of a campaign, dispatched (queued) at the frozen time."""
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
        clock.shift(STALE_QUEUED_AFTER - timedelta(seconds=1))
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
            clock.shift(STALE_QUEUED_AFTER * 2)
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
        clock.shift(STALE_QUEUED_AFTER + timedelta(minutes=1))
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
        clock.shift(STALE_SENDING_AFTER - timedelta(seconds=1))
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


def test_stale_sending_without_a_sent_delivery_fails_and_is_not_resent(company: Company) -> None:
    with time_machine.travel(START, tick=False) as clock:
        campaign, (claimed_only, mid_call) = _queued(company, 2)
        # One was claimed and the worker died before the ledger row was written…
        assert _claim(company=company, invitation_ids=[claimed_only.pk], reminder=False)
        # …the other died during the provider call: its ledger row is still "sending".
        with (
            postmark(),
            mock.patch("notifications.email._send_batch", side_effect=WorkerKilled),
            pytest.raises(WorkerKilled),
        ):
            invitations_send(company=company, invitation_ids=[mid_call.pk])
        Delivery.objects.for_company(company).update(status="sending")
        clock.shift(STALE_SENDING_AFTER + timedelta(minutes=1))
        with postmark() as fake:
            outcome = invitations_sweep_stale()
    assert (outcome.sent, outcome.failed) == (0, 2)
    assert fake.calls == []
    for invitation in (claimed_only, mid_call):
        invitation.refresh_from_db()
        assert invitation.status == InvitationStatus.FAILED
        assert invitation.failed_reason == "interrupted: outcome unknown"
    events = InvitationEvent.objects.for_company(company).filter(event="failed")
    assert events.count() == 2
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def test_fresh_rows_are_left_alone(company: Company, other_company: Company) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _c1, (sending,) = _queued(company, 1)
        assert _claim(company=company, invitation_ids=[sending.pk], reminder=False)
        clock.shift(STALE_QUEUED_AFTER + timedelta(minutes=1))  # sending: still in time
        _c2, (queued,) = _queued(other_company, 1)  # queued just now
        outcome = invitations_sweep_stale()
    assert (outcome.requeued, outcome.sent, outcome.failed) == (0, 0, 0)
    sending.refresh_from_db()
    queued.refresh_from_db()
    assert sending.status == InvitationStatus.SENDING
    assert queued.status == InvitationStatus.QUEUED


def test_the_sweep_is_bounded_per_run(
    company: Company, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _queued(company, 3)
        clock.shift(STALE_QUEUED_AFTER + timedelta(minutes=1))
        with django_capture_on_commit_callbacks() as enqueued:
            assert invitations_sweep_stale(batch_size=2).requeued == 2
            assert invitations_sweep_stale(batch_size=2).requeued == 1
            assert invitations_sweep_stale(batch_size=2).requeued == 0  # stamped again
    assert len(enqueued) == 2
