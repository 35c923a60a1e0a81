"""What a saved answer owes, and the sweep that makes sure it is paid.

Every save of a response (``responses.services.response_record``) marks the row in the same
statement: ``owed_event`` ("created" or "updated": the webhook event still to emit) and
``owed_since``. After the commit a message wakes ``responses.alert_evaluate``, which runs
``response_effects_run``: in one transaction, with the response row locked, the webhook
event is emitted (its messages are rows, delivered by notifications.webhooks), the alert
rules are evaluated (the alert ledger, the follow-up, Slack and ``alert.triggered``) and the
mark is cleared. Then the alert emails go out (each ledger row claimed first).

So a lost message (Redis down while the answer was saved) loses nothing: the sweep
(``effects_sweep``, every few seconds from beat) wakes every answer owed for longer than
``REWAKE_AFTER``, and alert emails left pending or stuck by a dead worker. A repeated
message finds nothing owed and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from companies.models import Company
from companies.wake import wake
from responses.alerts import alert_emails_send_pending, alerts_raise, ledger_rows_by_address
from responses.models import OWED_CREATED, AlertFiring, Response
from responses.webhook_events import response_event_emit

logger = logging.getLogger(__name__)

# An answer's effects normally run within a second of the commit; owed for longer than this,
# its wake-up message is taken to be lost and it is woken again (at most once per period).
REWAKE_AFTER = timedelta(seconds=20)
# Alert emails claimed (pending → sending) longer ago than this belong to a dead worker: the
# post office's ledger (rows found by the alert's metadata) decides what is left to send.
EMAIL_CLAIM_LEASE = timedelta(minutes=1)
SWEEP_BATCH_SIZE = 1000
TASK = "responses.alert_evaluate"


def response_effects_wake(*, company_id: int, response_id: int) -> None:
    """After the commit, wake a worker for this answer's effects (a lost message is fine)."""
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
        if response.owed_since is not None:
            response_event_emit(
                company=company, response=response, created=response.owed_event == OWED_CREATED
            )
            fired = alerts_raise(company=company, response=response)
            Response.objects.for_company(company).filter(pk=response.pk).update(
                owed_event="", owed_since=None
            )
    alert_emails_send_pending(company=company, response_id=response_id)
    return fired


@dataclass
class EffectsSweep:
    answers: int = 0
    emails: int = 0


def effects_sweep(*, now: datetime | None = None, limit: int = SWEEP_BATCH_SIZE) -> EffectsSweep:
    """Wake what answers still owe (a system job across companies).

    - answers owed for longer than ``REWAKE_AFTER``: woken, and their ``owed_since`` moved to
      now, so each is woken again at most once per period;
    - alert emails pending for longer than that, or claimed by a worker longer ago than
      ``EMAIL_CLAIM_LEASE``: the claim is given back and the response's emails are woken.
    """
    now = now or timezone.now()
    outcome = EffectsSweep()
    responses = Response.objects.unscoped(reason="the effects sweep serves every company")
    with transaction.atomic():
        owed = list(
            responses.select_for_update(skip_locked=True)
            .filter(owed_since__lt=now - REWAKE_AFTER)
            .order_by("owed_since")
            .values_list("pk", "company_id")[:limit]
        )
        if owed:
            responses.filter(pk__in=[pk for pk, _company in owed]).update(owed_since=now)
            for pk, company_id in owed:
                wake(TASK, company_id, pk)
        outcome.answers = len(owed)
    firings = AlertFiring.objects.unscoped(reason="the effects sweep serves every company")
    with transaction.atomic():
        pending = Q(email_status=AlertFiring.EmailStatus.PENDING) & (
            Q(email_woken_at__isnull=True, fired_at__lt=now - REWAKE_AFTER)
            | Q(email_woken_at__lt=now - REWAKE_AFTER)
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
        for company_id, response_id in {(f.company_id, f.response_id) for f in unsent}:
            wake(TASK, company_id, response_id)
        outcome.emails = len(unsent)
    if outcome.answers or outcome.emails:
        logger.warning("answers' effects woken again: %s", outcome)
    return outcome
