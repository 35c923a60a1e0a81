"""Celery tasks of the surveys app: thin adapters, ids in, a service does the work."""

from __future__ import annotations

from celery import shared_task

from companies.models import Company
from companies.task_base import TenantTask
from companies.wake import INFRA_RETRY
from surveys.imports import contact_import_run

# --- Contacts ---------------------------------------------------------------------------------


# A million-row file takes minutes: the default hard limit (5 min) is for short tasks. The
# import claims itself (started_at) so a redelivered message never runs it twice.
@shared_task(
    name="surveys.import_contacts",
    base=TenantTask,
    # Queue "default" (CELERY_TASK_DEFAULT_QUEUE): no route needed.
    time_limit=3 * 3600,
    soft_time_limit=3 * 3600 - 60,
)
def import_contacts(company_id: int, import_pk: int) -> None:
    company = Company.objects.get(pk=company_id)
    contact_import_run(company=company, import_pk=import_pk)


# --- Sending ----------------------------------------------------------------------------------


@shared_task(name="surveys.dispatch_due", base=TenantTask, system_job=True)
def dispatch_due() -> int:
    """Beat, every 15 s: start due campaigns, hand due invitations to send tasks, and pick
    up invitations stuck in queued/sending (lost message, killed worker)."""
    from surveys.services.dispatch import invitations_dispatch_due, invitations_sweep_stale

    invitations_sweep_stale()
    return invitations_dispatch_due()


@shared_task(name="surveys.dispatch_autopilot", base=TenantTask, system_job=True)
def dispatch_autopilot() -> int:
    """Beat, every 15 s (and woken by a new join): ask the members who are due, then add
    the contacts of pending joins (segments, finished imports) to their programme (first
    asked by a later run: a join, however large, never delays the asks that are due)."""
    from surveys.services.autopilot import autopilot_dispatch_due, autopilot_joins_run

    asked = autopilot_dispatch_due().asked
    autopilot_joins_run()
    return asked


@shared_task(name="surveys.dispatch_reminders", base=TenantTask, system_job=True)
def dispatch_reminders() -> int:
    """Beat, every 5 min: enqueue the reminders that are due."""
    from surveys.services.dispatch import reminders_dispatch_due

    return reminders_dispatch_due()


@shared_task(name="surveys.expand_campaign", base=TenantTask, **INFRA_RETRY)
def expand_campaign(company_id: int, campaign_id: int) -> None:
    """Turn a campaign's audience into invitations (resumes where a crashed run stopped)."""
    from surveys.services.campaigns import campaign_expand

    campaign_expand(company=Company.objects.get(pk=company_id), campaign_id=campaign_id)


@shared_task(
    name="surveys.send_invitations", base=TenantTask, bind=True, acks_late=True, **INFRA_RETRY
)
def send_invitations(
    self: TenantTask, company_id: int, invitation_ids: list[int], reminder: bool = False
) -> None:
    """Send these invitations (or their reminder). Safe to run twice: each row is claimed
    before the provider is called, so a redelivered message finds nothing left to send.

    A provider that cannot take them now (network, 429, 5xx, the rate limiter down): they
    wait in the database for their next attempt (``invitations_retry_later``). The database
    or Redis down: the task is retried with backoff (``INFRA_RETRY``)."""
    from notifications.transport import TransientSendError
    from surveys.services.send import invitations_retry_later, invitations_send

    company = Company.objects.get(pk=company_id)
    try:
        invitations_send(company=company, invitation_ids=invitation_ids, reminder=reminder)
    except TransientSendError as exc:
        invitations_retry_later(
            company=company,
            invitation_ids=invitation_ids,
            at_least=exc.retry_after,
            reminder=reminder,
        )
