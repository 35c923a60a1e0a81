"""What every channel of the post office shares: the errors, the ledger writes around a
provider call, and the registry of channels.

A channel module (``notifications.email``, ``notifications.sms``) has one entry point of the
same shape, ``<channel>_send(*, company, messages) -> list[Delivery]`` (the rows in the
order of ``messages``), registered here under the channels it serves, and keeps to one
contract:

- every message has a Delivery row, written and committed before any provider call
  (``notifications.ledger``);
- a row is moved to ``sending`` right before its call (``calls_begin``) and to its outcome
  right after (``outcomes_save``);
- a transient failure puts every row not yet decided back to ``queued`` (``requeue``) and
  raises ``TransientSendError`` with all the rows: the caller retries later with the same
  ``delivery_id``s, and a row that is no longer ``queued`` is never sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from companies.tenancy import tenant_update_per_row
from notifications.ledger import announce
from notifications.models import Channel, Delivery, DeliveryStatus

if TYPE_CHECKING:
    from companies.models import Company

# HTTP statuses worth retrying: rate limited, server trouble, and credentials being fixed.
TRANSIENT_HTTP_STATUS = frozenset({401, 403, 408, 409, 425, 429})
# The channels that go through Twilio (SMS and WhatsApp share a post office).
SMS_CHANNELS: frozenset[str] = frozenset({Channel.SMS, Channel.WHATSAPP})


class TransientSendError(Exception):
    """Retry later; ``deliveries`` are the rows of the call, undecided ones back to queued."""

    def __init__(self, message: str, *, deliveries: list[Delivery], retry_after: float = 0):
        super().__init__(message)
        self.deliveries = deliveries
        self.retry_after = retry_after


def calls_begin(company: Company, rows: Sequence[Delivery]) -> None:
    """The rows are about to be handed to the provider: ``sending``, one attempt more."""
    Delivery.objects.for_company(company).filter(pk__in=[row.pk for row in rows]).update(
        status=DeliveryStatus.SENDING, attempts=F("attempts") + 1
    )
    for row in rows:
        row.status = DeliveryStatus.SENDING
        row.attempts += 1


_OUTCOME_FIELDS = ["status", "error", "sent_at", "provider_message_id", "updated_at"]


def outcomes_save(company: Company, rows: Sequence[Delivery]) -> None:
    """Write the outcome fields of ``rows`` as they are in memory and announce each.

    ``bulk_update`` builds one CASE per field and row, which cost most of a send. Here: one
    plain UPDATE per group of rows sharing status/error/sent_at/updated_at (usually one
    group), then the per-row provider_message_id in one ``UPDATE … FROM (VALUES …)`` on
    PostgreSQL. Other databases keep ``bulk_update``.
    """
    if connection.vendor != "postgresql":
        Delivery.objects.for_company(company).bulk_update(list(rows), _OUTCOME_FIELDS)
    else:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for row in rows:
            key = (row.status, row.error, row.sent_at, row.updated_at)
            groups.setdefault(key, []).append(row.pk)
        with transaction.atomic(savepoint=False):
            for (status, error, sent_at, updated_at), ids in groups.items():
                Delivery.objects.for_company(company).filter(pk__in=ids).update(
                    status=status, error=error, sent_at=sent_at, updated_at=updated_at
                )
            tenant_update_per_row(
                Delivery,
                company=company,
                field_name="provider_message_id",
                values=[(row.pk, row.provider_message_id) for row in rows],
            )
    for row in rows:
        announce(row)


def outcome_set(
    row: Delivery, *, status: str, error: str = "", message_id: str = "", now: Any = None
) -> None:
    """Set one row's outcome in memory (``outcomes_save`` writes it)."""
    now = now or timezone.now()
    row.status, row.error, row.updated_at = status, error[:2000], now
    if status == DeliveryStatus.SENT:
        row.sent_at = now
        if message_id:
            row.provider_message_id = message_id[:255]


def requeue(company: Company, rows: Sequence[Delivery]) -> None:
    """Put undecided rows back to queued so that a retry (``delivery_id``) sends them."""
    Delivery.objects.for_company(company).filter(
        pk__in=[row.pk for row in rows],
        status__in=[DeliveryStatus.SENDING, DeliveryStatus.QUEUED],
    ).update(status=DeliveryStatus.QUEUED)
    for row in rows:
        row.status = DeliveryStatus.QUEUED
