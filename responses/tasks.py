"""Celery tasks of the responses app: thin adapters, ids in, a service does the work.

Names start with ``responses.alert_``: CELERY_TASK_ROUTES sends them to the ``alerts`` queue,
so alerts are not stuck behind a big send.
"""

from __future__ import annotations

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from companies.models import Company

# Transient provider errors: retried after 30 s, 1 min, 2 min … capped at 10 min. The ledger
# makes a retry raise nothing twice and send only what is left.
ALERT_MAX_RETRIES = 8
ALERT_BACKOFF_BASE = 30
ALERT_BACKOFF_MAX = 600


@shared_task(
    name="responses.alert_evaluate",
    base=DjangoTask,
    bind=True,
    acks_late=True,
    max_retries=ALERT_MAX_RETRIES,
)
def alert_evaluate(self: DjangoTask, company_id: int, response_id: int) -> int:
    """Raise the alerts a saved response calls for (idempotent: see responses/alerts.py)."""
    from notifications.transport import TransientSendError
    from responses.alerts import alerts_evaluate

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return 0
    try:
        return len(alerts_evaluate(company=company, response_id=response_id))
    except TransientSendError as err:
        countdown = min(ALERT_BACKOFF_BASE * 2**self.request.retries, ALERT_BACKOFF_MAX)
        raise self.retry(exc=err, countdown=max(countdown, err.retry_after)) from err


@shared_task(name="responses.response_event", base=DjangoTask)
def response_event(company_id: int, response_id: int, created: bool) -> None:
    """``response.created`` / ``response.updated`` to the company's subscribed webhook
    endpoints (none subscribed: one query, nothing else)."""
    from responses.webhook_events import response_event_emit

    company = Company.objects.filter(pk=company_id).first()
    if company is not None:
        response_event_emit(company=company, response_id=response_id, created=created)


@shared_task(name="responses.alert_escalate_overdue", base=DjangoTask)
def alert_escalate_overdue() -> int:
    """Beat, every minute: mark overdue follow-ups and email admins (once per follow-up)."""
    from responses.followups import followups_escalate_overdue

    return followups_escalate_overdue()
