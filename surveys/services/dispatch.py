"""The periodic jobs across companies: due invitations and campaigns, reminders, the stale sweep."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.transport import SMS_CHANNELS
from surveys.models import (
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    Survey,
    SurveyStatus,
)
from surveys.services.campaigns import campaigns_mark_done, enqueue_expand
from surveys.services.send import SendOutcome, record_results

logger = logging.getLogger(__name__)


# Invitations per send task. The post office splits further to the provider's per-call cap;
# 500 is the largest cap among the supported providers (Postmark), so one task is at most one
# provider call for most of them.
SEND_BATCH_SIZE = 500

# SMS/WhatsApp invitations per send task: one message per provider call at the sender's rate
# (1/s for a long code), so a task stays well inside the time limit.
SMS_SEND_BATCH_SIZE = 20

# Due invitations moved to queued per dispatcher transaction; a run repeats until drained.
DISPATCH_BATCH_SIZE = 5000

DISPATCH_MAX_BATCHES = 100

# Due campaigns started per dispatcher run.
DISPATCH_CAMPAIGNS = 100

# Reminders enqueued per survey per run.
REMINDER_BATCH_SIZE = 5000

# The stale sweep (invitations_sweep_stale). A send message is normally taken within seconds
# and a retried one waits at most 10 minutes (tasks.SEND_BACKOFF_MAX): a row queued for
# longer lost its message (broker restart, purge). Enqueuing it again is safe, the send task
# claims before sending; during a long backlog the extra message just finds nothing to claim.
STALE_QUEUED_AFTER = timedelta(minutes=15)

# A send task is killed at the hard time limit (5 min) and an unacknowledged message comes
# back after the broker's visibility timeout (20 min): a row still "sending" after 30 minutes
# belongs to a worker that died during the provider call. Its outcome is read from the
# delivery ledger; it is never sent again (the provider may already have taken it).
STALE_SENDING_AFTER = timedelta(minutes=30)

# Rows of each kind resolved per sweep run (every dispatcher run, 15 s): bounded work.
STALE_SWEEP_BATCH_SIZE = 1000


def invitations_dispatch_due(
    *, now: datetime | None = None, batch_size: int = DISPATCH_BATCH_SIZE
) -> int:
    """The periodic dispatcher (a system job across companies): start due campaigns, hand
    due invitations to send tasks. Returns how many invitations were queued.

    Due invitations (scheduled, time come, survey active: a paused survey's invitations
    wait) are locked with SKIP LOCKED in the partial index's order, moved to ``queued`` with
    a conditional UPDATE, and one send task per company and ``SEND_BATCH_SIZE`` ids is
    enqueued after the commit. Concurrent dispatchers skip each other's rows.
    """
    from surveys.tasks import send_invitations

    now = now or timezone.now()
    _campaigns_start_due(now=now)
    total = 0
    for _batch in range(DISPATCH_MAX_BATCHES):
        with transaction.atomic():
            rows = list(
                Invitation.objects.unscoped(reason="the dispatcher serves every company")
                .select_for_update(skip_locked=True, of=("self",))
                .filter(
                    status=InvitationStatus.SCHEDULED,
                    scheduled_for__lte=now,
                    survey__status=SurveyStatus.ACTIVE,
                )
                .order_by("scheduled_for", "pk")
                .values_list("pk", "company_id", "channel")[:batch_size]
            )
            if not rows:
                break
            # updated_at is stamped by hand: update() skips auto_now, and the stale sweep
            # measures how long a row has been queued from it.
            Invitation.objects.unscoped(reason="rows locked just above").filter(
                pk__in=[pk for pk, _company, _channel in rows], status=InvitationStatus.SCHEDULED
            ).update(status=InvitationStatus.QUEUED, updated_at=timezone.now())
            # Email and text messages go in separate tasks of their own sizes.
            by_company: dict[tuple[int, bool], list[int]] = {}
            for pk, company_id, channel in rows:
                by_company.setdefault((company_id, channel in SMS_CHANNELS), []).append(pk)
            for (company_id, texts), ids in by_company.items():
                size = SMS_SEND_BATCH_SIZE if texts else SEND_BATCH_SIZE
                for start in range(0, len(ids), size):
                    send_invitations.delay_on_commit(company_id, ids[start : start + size])
            total += len(rows)
        if len(rows) < batch_size:
            break
    return total


def _campaigns_start_due(*, now: datetime) -> None:
    """Claim due scheduled campaigns (scheduled → expanding) and enqueue their expansion."""
    due = list(
        Campaign.objects.unscoped(reason="the dispatcher serves every company")
        .filter(
            status=CampaignStatus.SCHEDULED,
            scheduled_for__lte=now,
            survey__status=SurveyStatus.ACTIVE,
        )
        .order_by("scheduled_for")
        .values_list("pk", "company_id")[:DISPATCH_CAMPAIGNS]
    )
    for pk, company_id in due:
        with transaction.atomic():
            claimed = (
                Campaign.objects.unscoped(reason="claiming one due campaign")
                .filter(pk=pk, status=CampaignStatus.SCHEDULED)
                .update(status=CampaignStatus.EXPANDING)
            )
            if claimed:
                enqueue_expand(company_id=company_id, campaign_id=pk)


@dataclass
class SweepOutcome:
    """What one ``invitations_sweep_stale`` run did."""

    requeued: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0


def invitations_sweep_stale(
    *, now: datetime | None = None, batch_size: int = STALE_SWEEP_BATCH_SIZE
) -> SweepOutcome:
    """Pick up invitations stuck between the dispatcher and the provider (a system job
    across companies, run with the dispatcher).

    - ``queued`` for longer than ``STALE_QUEUED_AFTER``: the send message was lost; a send
      task is enqueued again (the claim makes a duplicate message harmless).
    - ``sending`` for longer than ``STALE_SENDING_AFTER``: the worker died during the provider
      call. The delivery ledger decides: a sent (delivered, opened…) delivery makes the
      invitation sent, a suppressed or failed one gives that result; without a decided
      delivery it fails as "interrupted: outcome unknown" and is never sent again.

    At most ``batch_size`` rows of each kind per run, oldest first, locked with SKIP LOCKED.
    """
    from surveys.tasks import send_invitations

    now = now or timezone.now()
    outcome = SweepOutcome()
    with transaction.atomic():
        rows = list(
            Invitation.objects.unscoped(reason="the stale sweep serves every company")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(status=InvitationStatus.QUEUED, updated_at__lt=now - STALE_QUEUED_AFTER)
            .order_by("updated_at", "pk")
            .values_list("pk", "company_id", "channel")[:batch_size]
        )
        if rows:
            # A fresh stamp: the row is enqueued again at most once per STALE_QUEUED_AFTER.
            Invitation.objects.unscoped(reason="rows locked just above").filter(
                pk__in=[pk for pk, _company, _channel in rows], status=InvitationStatus.QUEUED
            ).update(updated_at=now)
            by_company: dict[tuple[int, bool], list[int]] = {}
            for pk, company_id, channel in rows:
                by_company.setdefault((company_id, channel in SMS_CHANNELS), []).append(pk)
            for (company_id, texts), ids in by_company.items():
                size = SMS_SEND_BATCH_SIZE if texts else SEND_BATCH_SIZE
                for start in range(0, len(ids), size):
                    send_invitations.delay_on_commit(company_id, ids[start : start + size])
            InvitationEvent.objects.bulk_create(
                InvitationEvent(
                    company_id=company_id,
                    invitation_id=pk,
                    event="requeued",
                    detail="send message lost: enqueued again",
                )
                for pk, company_id, _channel in rows
            )
            outcome.requeued = len(rows)
    with transaction.atomic():
        stuck = list(
            Invitation.objects.unscoped(reason="the stale sweep serves every company")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(status=InvitationStatus.SENDING, updated_at__lt=now - STALE_SENDING_AFTER)
            .select_related("survey", "company")
            .order_by("updated_at", "pk")[:batch_size]
        )
        if stuck:
            _sweep_resolve_sending(stuck, now=now, outcome=outcome)
    if outcome.requeued or outcome.sent or outcome.failed or outcome.suppressed:
        logger.warning("stale invitations swept: %s", outcome)
    return outcome


def _sweep_resolve_sending(
    stuck: Sequence[Invitation], *, now: datetime, outcome: SweepOutcome
) -> None:
    """Settle invitations whose send task died mid-call from the delivery ledger (rows locked
    by the caller). Two reads of the ledger, then one write set per company."""
    from notifications.models import Delivery

    linked = {i.delivery_id for i in stuck if i.delivery_id is not None}
    by_pk = (
        Delivery.objects.unscoped(reason="the stale sweep serves every company").in_bulk(
            list(linked)
        )
        if linked
        else {}
    )
    # A first attempt links its Delivery only after the provider call: find it by the
    # metadata the send wrote (invitation public id, unique per company). Rare (a worker
    # died), and limited to the stuck rows' companies.
    unlinked = [i for i in stuck if i.delivery_id is None]
    by_metadata: dict[tuple[int, str], Any] = {}
    if unlinked:
        found = (
            Delivery.objects.unscoped(reason="the stale sweep serves every company")
            .filter(
                company_id__in={i.company_id for i in unlinked},
                metadata__message="invitation",
                metadata__invitation__in=[i.public_id for i in unlinked],
            )
            .order_by("created_at", "pk")
        )
        for delivery in found:
            key = (delivery.company_id, str(delivery.metadata.get("invitation")))
            best = by_metadata.get(key)
            # A decided row wins over an undecided one; among equals the latest.
            if best is None or not delivery_undecided(delivery) or delivery_undecided(best):
                by_metadata[key] = delivery
    by_company: dict[int, list[tuple[Invitation, Any]]] = {}
    for invitation in stuck:
        if invitation.delivery_id is not None:
            ledger_row = by_pk.get(invitation.delivery_id)
        else:
            ledger_row = by_metadata.get((invitation.company_id, invitation.public_id))
        by_company.setdefault(invitation.company_id, []).append((invitation, ledger_row))
    reason = "interrupted: outcome unknown"
    for pairs in by_company.values():
        company = pairs[0][0].company
        decided = [(i, d) for i, d in pairs if d is not None and not delivery_undecided(d)]
        unknown = [i for i, d in pairs if d is None or delivery_undecided(d)]
        result = SendOutcome()
        record_results(company=company, results=decided, reminder=False, now=now, outcome=result)
        outcome.sent += result.sent
        outcome.failed += result.failed
        outcome.suppressed += result.suppressed
        if unknown:
            Invitation.objects.for_company(company).filter(
                pk__in=[i.pk for i in unknown], status=InvitationStatus.SENDING
            ).update(status=InvitationStatus.FAILED, failed_reason=reason, updated_at=now)
            InvitationEvent.objects.bulk_create(
                InvitationEvent(company=company, invitation=i, event="failed", detail=reason)
                for i in unknown
            )
            outcome.failed += len(unknown)
        campaigns_mark_done(
            company=company,
            campaign_ids={i.campaign_id for i, _d in pairs if i.campaign_id is not None},
        )


def delivery_undecided(delivery: Any) -> bool:
    return delivery.status in ("queued", "sending")


def reminders_dispatch_due(*, now: datetime | None = None) -> int:
    """Enqueue the one reminder of sent, unanswered invitations whose time has come.

    A system job across companies. Per active survey with reminders on: invitations sent at
    least ``reminder_after_days`` ago, not answered, link not expired, no reminder yet. The
    send task claims each by setting ``reminder_sent_at`` (a conditional UPDATE), so an
    invitation enqueued twice (two runs before the task ran) is still reminded once.
    Unsubscribed addresses are caught by the post office (suppressed, not sent).
    """
    from surveys.tasks import send_invitations

    now = now or timezone.now()
    total = 0
    surveys = Survey.objects.unscoped(reason="the reminder dispatcher serves every company").filter(
        status=SurveyStatus.ACTIVE, reminder_after_days__isnull=False
    )
    for survey in surveys.only("pk", "company_id", "reminder_after_days"):
        assert survey.reminder_after_days is not None
        due_before = now - timedelta(days=survey.reminder_after_days)
        ids = list(
            Invitation.objects.filter(company_id=survey.company_id)
            .filter(
                survey_id=survey.pk,
                status=InvitationStatus.SENT,
                answered_at__isnull=True,
                reminder_sent_at__isnull=True,
                sent_at__lte=due_before,
            )
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("pk")
            .values_list("pk", flat=True)[:REMINDER_BATCH_SIZE]
        )
        for start in range(0, len(ids), SEND_BATCH_SIZE):
            send_invitations.delay_on_commit(
                survey.company_id, ids[start : start + SEND_BATCH_SIZE], reminder=True
            )
        total += len(ids)
    return total
