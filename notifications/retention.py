"""Data retention of the post office: services run by nps_saas/retention.py.

Rows older than the cutoff are deleted, not anonymised: a delivery ledger row (address,
subject, provider payload and errors) and its provider events, and an outbound webhook or
Slack message (its payload carries the answer) with its attempt log, are records of sending
that nothing counts once they are that old. Messages still owed are left until they finish.
Suppressions are kept: the promise not to write to an address again outlives any retention.
"""

from __future__ import annotations

from datetime import datetime

from companies.models import Company
from companies.retention import BATCH_SIZE, in_batches
from notifications.models import (
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    WebhookAttempt,
    WebhookMessage,
)
from notifications.webhooks_models import MessageStatus

_DELIVERY_PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


def deliveries_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete ledger rows (with their provider events) created before ``cutoff``."""
    rows = (
        Delivery.objects.for_company(company)
        .filter(created_at__lt=cutoff)
        .exclude(status__in=_DELIVERY_PENDING)
    )

    def delete(pks: list[int]) -> None:
        DeliveryEvent.objects.for_company(company).filter(delivery_id__in=pks).delete()
        Delivery.objects.for_company(company).filter(pk__in=pks).delete()

    return in_batches(rows, delete, batch_size=batch_size)


def webhook_messages_delete_before(
    *, company: Company, cutoff: datetime, batch_size: int = BATCH_SIZE
) -> int:
    """Delete finished webhook and Slack messages (with their attempt logs) created before
    ``cutoff``."""
    rows = (
        WebhookMessage.objects.for_company(company)
        .filter(created_at__lt=cutoff)
        .filter(status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED])
    )

    def delete(pks: list[int]) -> None:
        WebhookAttempt.objects.for_company(company).filter(message_id__in=pks).delete()
        WebhookMessage.objects.for_company(company).filter(pk__in=pks).delete()

    return in_batches(rows, delete, batch_size=batch_size)
