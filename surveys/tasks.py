"""Celery tasks of the surveys app: thin adapters, ids in, a service does the work."""

from __future__ import annotations

import random
from datetime import timedelta

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from companies.models import Company
from surveys.imports import contact_import_run

# --- Contacts ---------------------------------------------------------------------------------


# A million-row file takes minutes: the default hard limit (5 min) is for short tasks. The
# import claims itself (started_at) so a redelivered message never runs it twice.
@shared_task(
    name="surveys.import_contacts",
    base=DjangoTask,
    # Queue "default" (CELERY_TASK_DEFAULT_QUEUE): no route needed.
    time_limit=3 * 3600,
    soft_time_limit=3 * 3600 - 60,
)
def import_contacts(company_id: int, import_pk: int) -> None:
    company = Company.objects.get(pk=company_id)
    contact_import_run(company=company, import_pk=import_pk)


# --- Sending ----------------------------------------------------------------------------------

# Transient provider errors (network, 429, 5xx) are retried with exponential backoff and
# jitter: 30 s, 60 s, 2 min … capped at 10 min; after the last retry the invitations fail.
SEND_MAX_RETRIES = 6
SEND_BACKOFF_BASE = 30
SEND_BACKOFF_MAX = 600


@shared_task(name="surveys.dispatch_due", base=DjangoTask)
def dispatch_due() -> int:
    """Beat, every 15 s: start due campaigns, hand due invitations to send tasks, and pick
    up invitations stuck in queued/sending (lost message, killed worker)."""
    from surveys.services.dispatch import invitations_dispatch_due, invitations_sweep_stale

    invitations_sweep_stale()
    return invitations_dispatch_due()


@shared_task(name="surveys.dispatch_reminders", base=DjangoTask)
def dispatch_reminders() -> int:
    """Beat, every 5 min: enqueue the reminders that are due."""
    from surveys.services.dispatch import reminders_dispatch_due

    return reminders_dispatch_due()


@shared_task(name="surveys.expand_campaign", base=DjangoTask)
def expand_campaign(company_id: int, campaign_id: int) -> None:
    """Turn a campaign's audience into invitations (resumes where a crashed run stopped)."""
    from surveys.services.campaigns import campaign_expand

    campaign_expand(company=Company.objects.get(pk=company_id), campaign_id=campaign_id)


@shared_task(
    name="surveys.send_invitations",
    base=DjangoTask,
    bind=True,
    acks_late=True,
    max_retries=SEND_MAX_RETRIES,
)
def send_invitations(
    self: DjangoTask, company_id: int, invitation_ids: list[int], reminder: bool = False
) -> None:
    """Send these invitations (or their reminder). Safe to run twice: each row is claimed
    before the provider is called, so a redelivered message finds nothing left to send."""
    from notifications.transport import TransientSendError
    from surveys.services.send import invitations_give_up, invitations_retry_later, invitations_send

    company = Company.objects.get(pk=company_id)
    try:
        invitations_send(company=company, invitation_ids=invitation_ids, reminder=reminder)
    except TransientSendError as exc:
        retries = self.request.retries
        backoff = min(SEND_BACKOFF_MAX, SEND_BACKOFF_BASE * 2**retries)
        countdown = max(
            backoff / 2 + random.uniform(0, backoff / 2),  # noqa: S311 (jitter)
            exc.retry_after,
        )
        if self.request.is_eager:
            # Inline tasks (make run) cannot wait: the rows wait in the database instead
            # and the dispatcher sends them again when due (reminders: at its next run).
            invitations_retry_later(
                company=company,
                invitation_ids=invitation_ids,
                after=timedelta(seconds=countdown),
                max_attempts=SEND_MAX_RETRIES + 1,
                reminder=reminder,
            )
            return
        if retries >= SEND_MAX_RETRIES:
            invitations_give_up(
                company=company,
                invitation_ids=invitation_ids,
                reason=f"gave up after {retries + 1} attempts: {exc}",
                reminder=reminder,
            )
            return
        raise self.retry(exc=exc, countdown=countdown) from exc
