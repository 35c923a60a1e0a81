"""The periodic jobs across companies: due invitations and campaigns, reminders, the stale sweep.

What is owed lives in the database (scheduled and queued invitations, expanding campaigns);
Celery messages only wake workers. The dispatcher (beat, every few seconds) hands due
invitations to send tasks and starts due campaigns; the stale sweep, run with it, wakes
again what lost its message and settles what a dead worker left half done, from the
delivery ledger. Every claim is a conditional UPDATE, so a woken task that finds its work
already taken does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from companies.models import Company
from companies.wake import wake
from notifications.models import Delivery, DeliveryStatus
from notifications.transport import TransientSendError, call_deadline, deliveries_resolve
from surveys.models import (
    Campaign,
    CampaignStatus,
    ContactImport,
    ImportStatus,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    Survey,
    SurveyStatus,
)
from surveys.services.campaigns import campaigns_mark_done, expansion_wake
from surveys.services.invitations import events_add, sends_wake
from surveys.services.send import SendOutcome, delivery_undecided, record_results

logger = logging.getLogger(__name__)

# Due invitations moved to queued per dispatcher transaction; a run repeats until drained.
DISPATCH_BATCH_SIZE = 5000
DISPATCH_MAX_BATCHES = 100
# Due campaigns started per dispatcher run.
DISPATCH_CAMPAIGNS = 100
# Reminders enqueued per survey per run.
REMINDER_BATCH_SIZE = 5000

# The stale sweep (invitations_sweep_stale), every dispatcher run:
# - A send message is taken within seconds of the commit; an invitation ``queued`` for
#   longer than this lost it (Redis down, restarted, purged) and is woken again. During a
#   backlog the extra message finds nothing to claim.
REWAKE_QUEUED_AFTER = timedelta(seconds=30)
# - A send task holds its claim for seconds (one provider call per email task; at most
#   SMS_SEND_BATCH_SIZE messages at the sender's rate). An invitation ``sending`` for longer
#   is settled from the ledger: sent, failed or suppressed as its delivery says; not handed
#   to the provider (delivery ``queued`` or none) → queued again and sent; mid-call →
#   looked up once the call cannot be running any more (``call_deadline``). A worker still
#   alive past the lease is harmless: each delivery is claimed for one call only.
SEND_LEASE = timedelta(seconds=60)
# - An expansion writes a chunk in well under a second: a campaign ``expanding`` with no
#   progress for this long lost its worker or its message and is woken again (the campaign
#   row lock keeps two expansions from inviting anyone twice).
REWAKE_EXPANSION_AFTER = timedelta(seconds=30)
# Rows of each kind settled per sweep run: bounded work.
STALE_SWEEP_BATCH_SIZE = 1000
# Queued rows cost only a stamp and a message each: a whole lost backlog (Redis restarted
# under a 20,000-invitation campaign) is woken in a run or two, not 1,000 per 5 s.
REWAKE_QUEUED_FACTOR = 20


def invitations_dispatch_due(
    *, now: datetime | None = None, batch_size: int = DISPATCH_BATCH_SIZE
) -> int:
    """The periodic dispatcher (a system job across companies): start due campaigns, hand
    due invitations to send tasks. Returns how many invitations were queued.

    Due invitations (scheduled, time come, survey active: a paused survey's invitations
    wait) are locked with SKIP LOCKED in the partial index's order, moved to ``queued`` with
    a conditional UPDATE, and send tasks are woken after the commit (``sends_wake``: per
    company and kind of channel, ``SEND_BATCH_SIZE`` or ``SMS_SEND_BATCH_SIZE`` ids each).
    Concurrent dispatchers skip each other's rows.
    """
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
            sends_wake(rows)
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
                .update(status=CampaignStatus.EXPANDING, progressed_at=timezone.now())
            )
            if claimed:
                expansion_wake(company_id=company_id, campaign_id=pk)


@dataclass
class SweepOutcome:
    """What one ``invitations_sweep_stale`` run did."""

    requeued: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    expansions: int = 0
    imports: int = 0


def invitations_sweep_stale(
    *, now: datetime | None = None, batch_size: int = STALE_SWEEP_BATCH_SIZE
) -> SweepOutcome:
    """Wake what lost its message and settle what a dead worker left (a system job across
    companies, run with the dispatcher; see the constants above for each rule).

    At most ``batch_size`` rows of each kind per run, oldest first, locked with SKIP LOCKED.
    """
    now = now or timezone.now()
    outcome = SweepOutcome()
    invitations = Invitation.objects.unscoped(reason="the stale sweep serves every company")
    with transaction.atomic():
        rows = list(
            invitations.select_for_update(skip_locked=True, of=("self",))
            .filter(status=InvitationStatus.QUEUED, updated_at__lt=now - REWAKE_QUEUED_AFTER)
            .order_by("updated_at", "pk")
            .values_list("pk", "company_id", "channel")[: batch_size * REWAKE_QUEUED_FACTOR]
        )
        if rows:
            # A fresh stamp: the row is woken again at most once per REWAKE_QUEUED_AFTER.
            invitations.filter(pk__in=[pk for pk, _c, _ch in rows]).update(updated_at=now)
            by_company: dict[int, list[tuple[int, str, str]]] = {}
            for pk, company_id, _channel in rows:
                by_company.setdefault(company_id, []).append(
                    (pk, "requeued", "send message lost: woken again")
                )
            for company_id, events in by_company.items():
                events_add(Company(pk=company_id), events)
            sends_wake(rows)
            outcome.requeued = len(rows)
    _settle_sending(now=now, batch_size=batch_size, outcome=outcome)
    outcome.expansions = _expansions_rewake(now=now, batch_size=batch_size)
    outcome.imports = _imports_rewake(now=now, batch_size=batch_size)
    if any((outcome.requeued, outcome.sent, outcome.failed, outcome.suppressed)):
        logger.warning("stale invitations swept: %s", outcome)
    return outcome


def _settle_sending(*, now: datetime, batch_size: int, outcome: SweepOutcome) -> None:
    invitations = Invitation.objects.unscoped(reason="the stale sweep serves every company")
    stale = invitations.filter(status=InvitationStatus.SENDING, updated_at__lt=now - SEND_LEASE)
    # First, outside any lock: calls past their deadline are looked up at the provider.
    candidates = list(stale.order_by("updated_at", "pk").select_related("company")[:batch_size])
    ledger = _ledger_rows(candidates)
    in_doubt: dict[int, list[Delivery]] = {}
    for delivery in ledger.values():
        if (
            delivery.status == DeliveryStatus.SENDING
            and delivery.updated_at < now - call_deadline()
        ):
            in_doubt.setdefault(delivery.company_id, []).append(delivery)
    companies = {i.company_id: i.company for i in candidates}
    for company_id, deliveries in in_doubt.items():
        try:
            deliveries_resolve(company=companies[company_id], rows=deliveries)
        except TransientSendError as err:  # the provider cannot be asked now: next run
            logger.warning("unknown outcomes not looked up yet: %s", err)
    # Then each stuck invitation, locked, settles from its ledger row as it is now.
    with transaction.atomic():
        stuck = list(
            stale.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=[i.pk for i in candidates])
            .select_related("survey", "company")
            .order_by("updated_at", "pk")
        )
        ledger = _ledger_rows(stuck)
        by_company: dict[int, list[tuple[Invitation, Delivery | None]]] = {}
        for invitation in stuck:
            by_company.setdefault(invitation.company_id, []).append(
                (invitation, ledger.get(invitation.pk))
            )
        for pairs in by_company.values():
            _settle_company(pairs, now=now, outcome=outcome)


def _settle_company(
    pairs: Sequence[tuple[Invitation, Delivery | None]], *, now: datetime, outcome: SweepOutcome
) -> None:
    company = pairs[0][0].company
    decided = [(i, d) for i, d in pairs if d is not None and not delivery_undecided(d)]
    unsent = [(i, d) for i, d in pairs if d is None or d.status == DeliveryStatus.QUEUED]
    result = SendOutcome()
    record_results(company=company, results=decided, reminder=False, now=now, outcome=result)
    outcome.sent += result.sent
    outcome.failed += result.failed
    outcome.suppressed += result.suppressed
    if unsent:
        # Never handed to the provider: queued again (keeping the ledger row, which the
        # next attempt reuses) and woken; the claim's attempt is given back.
        rows = Invitation.objects.for_company(company)
        for invitation, delivery in unsent:
            rows.filter(pk=invitation.pk, status=InvitationStatus.SENDING).update(
                status=InvitationStatus.QUEUED,
                delivery=delivery,
                attempts=F("attempts") - 1,
                updated_at=now,
            )
        InvitationEvent.objects.bulk_create(
            InvitationEvent(
                company=company,
                invitation=i,
                event="requeued",
                detail="the send task stopped before the provider got it: sent again",
            )
            for i, _d in unsent
        )
        sends_wake((i.pk, company.pk, i.channel) for i, _d in unsent)
        outcome.requeued += len(unsent)
    campaigns_mark_done(
        company=company,
        campaign_ids={i.campaign_id for i, _d in pairs if i.campaign_id is not None},
    )


def _ledger_rows(invitations: Sequence[Invitation]) -> dict[int, Delivery]:
    """The ledger row of each invitation (by invitation pk): the linked one, else (a first
    attempt links its row only after the provider call) the one whose metadata names it."""
    if not invitations:
        return {}
    deliveries = Delivery.objects.unscoped(reason="the stale sweep serves every company")
    linked = deliveries.in_bulk([i.delivery_id for i in invitations if i.delivery_id])
    found: dict[int, Delivery] = {}
    for invitation in invitations:
        if invitation.delivery_id in linked:
            found[invitation.pk] = linked[invitation.delivery_id]
    unlinked = [i for i in invitations if i.pk not in found]
    if unlinked:
        by_key = {(i.company_id, i.public_id): i.pk for i in unlinked}
        rows = deliveries.filter(
            company_id__in={i.company_id for i in unlinked},
            metadata__message="invitation",
            metadata__invitation__in=[i.public_id for i in unlinked],
        ).order_by("created_at", "pk")
        for delivery in rows:
            pk = by_key.get((delivery.company_id, str(delivery.metadata.get("invitation"))))
            if pk is None:
                continue
            best = found.get(pk)
            # A decided row wins over an undecided one; among equals the latest.
            if best is None or not delivery_undecided(delivery) or delivery_undecided(best):
                found[pk] = delivery
    return found


def _expansions_rewake(*, now: datetime, batch_size: int) -> int:
    """Campaigns ``expanding`` with no progress for ``REWAKE_EXPANSION_AFTER``: woken again
    (their progress stamp moved, so at most once per period)."""
    campaigns = Campaign.objects.unscoped(reason="the stale sweep serves every company")
    with transaction.atomic():
        stale = list(
            campaigns.select_for_update(skip_locked=True)
            .filter(status=CampaignStatus.EXPANDING, progressed_at__lt=now - REWAKE_EXPANSION_AFTER)
            .values_list("pk", "company_id")[:batch_size]
        )
        if stale:
            campaigns.filter(pk__in=[pk for pk, _c in stale]).update(progressed_at=now)
            for pk, company_id in stale:
                expansion_wake(company_id=company_id, campaign_id=pk)
    return len(stale)


def _imports_rewake(*, now: datetime, batch_size: int) -> int:
    """Contact imports handed to a worker (reading or running) that no worker has claimed for
    ``REWAKE_QUEUED_AFTER``: their message was lost; woken again (the claim on
    ``started_at`` keeps a late duplicate from running one twice)."""
    from surveys.imports import IMPORT_TASK

    imports = ContactImport.objects.unscoped(reason="the stale sweep serves every company")
    with transaction.atomic():
        stale = list(
            imports.select_for_update(skip_locked=True)
            .filter(
                status__in=(ImportStatus.READING, ImportStatus.RUNNING),
                started_at=None,
                queued_at__lt=now - REWAKE_QUEUED_AFTER,
            )
            .values_list("pk", "company_id")[:batch_size]
        )
        if stale:
            imports.filter(pk__in=[pk for pk, _c in stale]).update(queued_at=now)
            for pk, company_id in stale:
                wake(IMPORT_TASK, company_id, pk)
    return len(stale)


def reminders_dispatch_due(*, now: datetime | None = None) -> int:
    """Enqueue the one reminder of sent, unanswered invitations whose time has come.

    A system job across companies. Per active survey with reminders on: invitations sent at
    least ``reminder_after_days`` ago, not answered, link not expired, no reminder yet. The
    send task claims each by setting ``reminder_sent_at`` (a conditional UPDATE), so an
    invitation enqueued twice (two runs before the task ran) is still reminded once.
    Unsubscribed addresses are caught by the post office (suppressed, not sent).
    """
    now = now or timezone.now()
    total = 0
    surveys = Survey.objects.unscoped(reason="the reminder dispatcher serves every company").filter(
        status=SurveyStatus.ACTIVE, reminder_after_days__isnull=False
    )
    for survey in surveys.only("pk", "company_id", "reminder_after_days"):
        assert survey.reminder_after_days is not None
        due_before = now - timedelta(days=survey.reminder_after_days)
        rows = list(
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
            .values_list("pk", "channel")[:REMINDER_BATCH_SIZE]
        )
        sends_wake(((pk, survey.company_id, channel) for pk, channel in rows), reminder=True)
        total += len(rows)
    return total
