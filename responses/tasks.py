"""Celery tasks of the responses app: thin adapters, ids in, a service does the work.

Names start with ``responses.alert_``: CELERY_TASK_ROUTES sends them to the ``alerts`` queue,
so alerts are not stuck behind a big send.
"""

from __future__ import annotations

from celery import shared_task

from companies.models import Company
from companies.task_base import TenantTask
from companies.wake import INFRA_RETRY

# Transient provider errors: retried after 30 s, 1 min, 2 min … capped at 10 min. The ledger
# makes a retry raise nothing twice and send only what is left.
ALERT_MAX_RETRIES = 8
ALERT_BACKOFF_BASE = 30
ALERT_BACKOFF_MAX = 600


@shared_task(
    name="responses.alert_evaluate",
    base=TenantTask,
    bind=True,
    acks_late=True,
    max_retries=ALERT_MAX_RETRIES,
)
def alert_evaluate(self: TenantTask, company_id: int, response_id: int) -> int:
    """Pay what a saved response owes: its webhook event, its alerts and their emails
    (idempotent: see responses/effects.py). Run inline after an answer's commit (eager
    tasks); with workers the drain does this. Transient errors are retried with backoff."""
    from notifications.transport import TRANSIENT_ERRORS
    from responses.effects import response_effects_run

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return 0
    try:
        return len(response_effects_run(company=company, response_id=response_id))
    except TRANSIENT_ERRORS as err:
        countdown = min(ALERT_BACKOFF_BASE * 2**self.request.retries, ALERT_BACKOFF_MAX)
        retry_after = getattr(err, "retry_after", 0)
        raise self.retry(exc=err, countdown=max(countdown, retry_after)) from err


@shared_task(name="responses.alert_drain", base=TenantTask, system_job=True, **INFRA_RETRY)
def alert_drain() -> int:
    """Beat, every second: pay what due answers owe (their webhook events, alerts and
    follow-ups) and send alert emails left behind (responses/effects.py)."""
    from responses.effects import effects_drain

    return effects_drain().answers


@shared_task(name="responses.alert_escalate_overdue", base=TenantTask, system_job=True)
def alert_escalate_overdue() -> int:
    """Beat, every minute: mark overdue follow-ups and email admins (once per follow-up)."""
    from responses.followups import followups_escalate_overdue

    return followups_escalate_overdue()
