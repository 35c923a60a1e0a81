"""What a saved answer owes, and the drain that pays it.

Every save of a response (``responses.services.response_record``) marks the row in the same
statement: ``owed_event`` ("created" or "updated": the webhook event still to emit) and
``owed_at`` (when it is due). The answer's request publishes nothing: the drain
(``effects_drain``, from beat every second on the ``alerts`` queue) claims due rows with a
lease (``owed_at`` moved ahead, SKIP LOCKED, so two workers never take the same row) and
runs ``response_effects_run`` for each: in one transaction, with the response row locked,
the webhook event is emitted (its messages are rows, delivered by notifications.webhooks),
the alert rules are evaluated (the alert ledger, the follow-up, Slack and
``alert.triggered``) and the mark is cleared. Then the alert emails go out (each ledger row
claimed first); on a score alone they wait for the respondent's comment, and go out with it
when it lands (the answer's update runs the effects again) or, without one, from the drain
when ``ALERT_COMMENT_WAIT_SECONDS`` are over.

So Redis down while answers arrive loses nothing and costs the answers nothing: the rows wait
until beat and the workers are back. A worker that dies mid-drain leaves its rows leased:
they are due again when the lease ends. Alert emails left pending, or claimed by a worker
that died, are picked up by the same drain. Run inline (``make run``, unit tests: tasks
eager), the effects run right after the answer's commit instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from companies.models import Company
from companies.wake import wake, wake_now
from notifications.transport import TransientSendError
from responses.alerts import alert_emails_send_pending, alerts_raise, ledger_rows_by_address
from responses.models import OWED_CREATED, AlertFiring, Response
from responses.webhook_events import response_event_emit

logger = logging.getLogger(__name__)

# A drain claims this many due answers at a time; with more due it wakes itself again.
DRAIN_BATCH_SIZE = 200
# A claimed answer is paid within a second; a claim this old belongs to a worker that died,
# and the answer is due again.
DRAIN_LEASE = timedelta(seconds=30)
# Alert emails pending for this long are sent by the drain (they normally go out right after
# their evaluation); claimed (pending → sending) longer ago than EMAIL_CLAIM_LEASE, they
# belong to a dead worker: the post office's ledger (rows found by the alert's metadata)
# decides what is left to send.
EMAIL_PENDING_AFTER = timedelta(seconds=10)
EMAIL_CLAIM_LEASE = timedelta(minutes=1)
TASK = "responses.alert_evaluate"
DRAIN_TASK = "responses.alert_drain"


def response_effects_wake(*, company_id: int, response_id: int) -> None:
    """Run inline (tasks eager: ``make run``, unit tests), pay the answer's effects right
    after its commit. With workers, nothing: the drain takes it within a second or two, and
    the answer's request costs no broker round trip (nor fails with the broker down)."""
    if current_app.conf.task_always_eager:
        wake(TASK, company_id, response_id)


def response_effects_run(*, company: Company, response_id: int) -> list[AlertFiring]:
    """Pay what the response owes (see the module docstring); the alerts raised now.

    Safe to run any number of times, concurrently too: the row lock orders runs, the mark
    says whether anything is owed, and the alert ledger raises each alert once.
    """
    fired: list[AlertFiring] = []
    with transaction.atomic():
        response = (
            Response.objects.for_company(company)
            .select_for_update(of=("self",))
            .select_related("survey", "contact")
            .filter(pk=response_id)
            .first()
        )
        if response is None:
            return []  # deleted since it was saved
        if response.owed_at is not None:
            response_event_emit(
                company=company, response=response, created=response.owed_event == OWED_CREATED
            )
            fired = alerts_raise(company=company, response=response)
            Response.objects.for_company(company).filter(pk=response.pk).update(
                owed_event="", owed_at=None
            )
    alert_emails_send_pending(company=company, response_id=response_id)
    return fired


@dataclass
class EffectsDrain:
    answers: int = 0
    emails: int = 0
    more: bool = False


def effects_drain(*, now: datetime | None = None, limit: int = DRAIN_BATCH_SIZE) -> EffectsDrain:
    """Pay what due answers owe, oldest first (a system job across companies), and send
    alert emails left behind. With a full batch done, the drain wakes itself again."""
    now = now or timezone.now()
    outcome = EffectsDrain()
    responses = Response.objects.unscoped(reason="the effects drain serves every company")
    with transaction.atomic():
        due = list(
            responses.select_for_update(skip_locked=True)
            .filter(owed_at__lte=now)
            .order_by("owed_at")
            .values_list("pk", "company_id")[:limit]
        )
        if due:
            responses.filter(pk__in=[pk for pk, _c in due]).update(owed_at=now + DRAIN_LEASE)
    companies = Company.objects.in_bulk({company_id for _pk, company_id in due})
    for pk, company_id in due:
        try:
            response_effects_run(company=companies[company_id], response_id=pk)
        except TransientSendError as err:
            # Its follow-up and ledger rows are committed; its emails wait as pending and
            # go out with the emails left behind.
            logger.warning("alert emails of response %s deferred: %s", pk, err)
    outcome.answers = len(due)
    outcome.emails = _emails_left_behind(now=now, limit=limit)
    outcome.more = len(due) == limit
    if outcome.more:
        wake_now(DRAIN_TASK)
    return outcome


def _emails_left_behind(*, now: datetime, limit: int) -> int:
    firings = AlertFiring.objects.unscoped(reason="the effects drain serves every company")
    with transaction.atomic():
        never_woken = Q(email_status=AlertFiring.EmailStatus.PENDING, email_woken_at__isnull=True)
        pending = (
            never_woken
            & (
                # Due at once: normally sent right after the evaluation.
                Q(email_not_before__isnull=True, fired_at__lt=now - EMAIL_PENDING_AFTER)
                # Waited for a comment that did not come: due when the wait is over.
                | Q(email_not_before__lte=now)
            )
        ) | Q(
            email_status=AlertFiring.EmailStatus.PENDING,
            email_woken_at__lt=now - EMAIL_PENDING_AFTER,
        )
        stuck = Q(
            email_status=AlertFiring.EmailStatus.SENDING,
            email_woken_at__lt=now - EMAIL_CLAIM_LEASE,
        )
        unsent = list(
            firings.select_for_update(skip_locked=True)
            .filter(pending | stuck)
            .order_by("fired_at")[:limit]
        )
        for firing in unsent:
            if firing.email_status == AlertFiring.EmailStatus.SENDING:
                # The worker died inside the post office: what it wrote to the ledger is
                # reused (a sent row is never sent again), the rest is sent now.
                firing.deliveries = {**ledger_rows_by_address(firing), **firing.deliveries}
            firing.email_status = AlertFiring.EmailStatus.PENDING
            firing.email_woken_at = now
        firings.bulk_update(unsent, ["email_status", "email_woken_at", "deliveries"])
    companies = Company.objects.in_bulk({f.company_id for f in unsent})
    for company_id, response_id in {(f.company_id, f.response_id) for f in unsent}:
        try:
            alert_emails_send_pending(company=companies[company_id], response_id=response_id)
        except TransientSendError as err:
            logger.warning("alert emails of response %s deferred: %s", response_id, err)
    if unsent:
        logger.warning("alert emails left behind, sent now: %d", len(unsent))
    return len(unsent)
