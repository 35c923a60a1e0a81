"""The delivery ledger shared by every channel: one Delivery row per message, written and
committed before any provider call, and the status announcements.

``ledger_write`` takes one ``LedgerEntry`` per message, in order, and returns the rows in
the same order. A retry passes the ``delivery_id`` its first attempt got: that row is reused
while it is still ``queued``; a row already decided (sent, failed, …) or left ``sending`` by
a killed worker (outcome unknown) comes back untouched and is never sent again, which is how
a redelivered or retried task cannot send twice. A message the channel refuses before any
call (suppressed address, invalid address, no sender) gets that status and error at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from notifications.models import Delivery, DeliveryStatus
from notifications.signals import message_status_changed

if TYPE_CHECKING:
    from companies.models import Company


@dataclass(frozen=True)
class LedgerEntry:
    # Field values of a new row (channel, to, subject, provider, metadata).
    fields: dict[str, Any]
    # The row an earlier attempt wrote (a retry), if any.
    delivery_id: int | None = None
    # (status, error) when the message must not go out at all.
    refusal: tuple[str, str] | None = field(default=None)


def ledger_write(*, company: Company, entries: Sequence[LedgerEntry]) -> list[Delivery]:
    """One Delivery per entry (see the module docstring), committed before returning."""
    reuse_ids = [entry.delivery_id for entry in entries if entry.delivery_id is not None]
    existing = Delivery.objects.for_company(company).in_bulk(reuse_ids) if reuse_ids else {}
    now = timezone.now()
    rows: list[Delivery] = []
    new_rows: list[Delivery] = []
    changed: list[Delivery] = []
    for entry in entries:
        row = existing.get(entry.delivery_id) if entry.delivery_id is not None else None
        if row is None:
            row = Delivery(company=company, created_at=now, **entry.fields)
            new_rows.append(row)
        elif row.status != DeliveryStatus.QUEUED:
            rows.append(row)  # decided (or outcome unknown): never sent again
            continue
        else:
            changed.append(row)
        if entry.refusal is not None:
            row.status, row.error = entry.refusal
        rows.append(row)
    with transaction.atomic():
        Delivery.objects.bulk_create(new_rows)
        if changed:
            Delivery.objects.for_company(company).bulk_update(changed, ["status", "error"])
    for row in new_rows + changed:
        if row.status != DeliveryStatus.QUEUED:
            announce(row)
    return rows


def announce(delivery: Delivery) -> None:
    """Send ``message_status_changed`` for the row's current status, after commit."""
    company_id, delivery_id = delivery.company_id, delivery.pk
    status, metadata = delivery.status, dict(delivery.metadata)
    occurred_at = delivery.sent_at or timezone.now()
    transaction.on_commit(
        lambda: message_status_changed.send(
            sender=Delivery,
            company_id=company_id,
            delivery_id=delivery_id,
            status=status,
            metadata=metadata,
            occurred_at=occurred_at,
        )
    )
