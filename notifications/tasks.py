"""Celery tasks of the post office: thin adapters, ids in, a service does the work.

Names start with ``notifications.``: CELERY_TASK_ROUTES sends them to the ``sends`` queue.
"""

from __future__ import annotations

from celery import shared_task

from companies.models import Company
from companies.task_base import TenantTask
from companies.wake import INFRA_RETRY


@shared_task(name="notifications.webhook_deliver", base=TenantTask, acks_late=True, **INFRA_RETRY)
def webhook_deliver(company_id: int, message_id: int, attempt: int) -> str | None:
    """One attempt of an outbound webhook or Slack message (claimed first: see
    notifications/webhooks.py); failures are rescheduled in the database, not here."""
    from notifications.webhooks import webhook_message_deliver

    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        return None
    return webhook_message_deliver(company=company, message_id=message_id, attempt=attempt)


@shared_task(name="notifications.webhooks_deliver_due", base=TenantTask, system_job=True)
def webhooks_deliver_due() -> int:
    """Beat, every 15 s: enqueue due webhook retries."""
    from notifications.webhooks import webhooks_deliver_due as sweep

    return sweep()


@shared_task(name="notifications.deliveries_resolve_due", base=TenantTask, system_job=True)
def deliveries_resolve_due() -> int:
    """Beat, every 30 s: settle deliveries whose call's outcome is unknown."""
    from notifications.transport import deliveries_resolve_due as sweep

    return sweep()
