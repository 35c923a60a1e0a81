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

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
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
        _insert(new_rows)
        if changed:
            Delivery.objects.for_company(company).bulk_update(changed, ["status", "error"])
    for row in new_rows + changed:
        if row.status != DeliveryStatus.QUEUED:
            announce(row)
    return rows


def _insert(rows: list[Delivery]) -> None:
    """Insert new rows and set their pks. On PostgreSQL one ``INSERT … SELECT … FROM
    unnest`` fed by arrays (a send writes 500 at a time, and ``bulk_create``'s per-value
    preparation was a large part of it); elsewhere ``bulk_create``."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_create(rows)
        return
    now = timezone.now()
    for row in rows:
        row.updated_at = now
    per_row = {
        "company_id": ("bigint[]", [row.company_id for row in rows]),
        "public_id": ("text[]", [row.public_id for row in rows]),
        "channel": ("text[]", [row.channel for row in rows]),
        "to": ("text[]", [row.to for row in rows]),
        "subject": ("text[]", [row.subject for row in rows]),
        "status": ("text[]", [row.status for row in rows]),
        "provider": ("text[]", [row.provider for row in rows]),
        "error": ("text[]", [row.error for row in rows]),
        "metadata": ("text[]", [json.dumps(row.metadata) for row in rows]),
        "created_at": ("timestamptz[]", [row.created_at for row in rows]),
    }
    quote = connection.ops.quote_name
    names = [*per_row, "provider_message_id", "attempts", "updated_at", "call_ref"]
    select = [f"r.{quote(name)}" for name in per_row]
    select[list(per_row).index("metadata")] += "::jsonb"
    select += ["''", "0", "%s", "''"]
    unnest = ", ".join(f"%s::{cast}" for cast, _column in per_row.values())
    params: list[Any] = [now, *(column for _cast, column in per_row.values())]
    # Only quoted model metadata is formatted in: every value is a parameter.
    sql = (
        f"INSERT INTO {quote(Delivery._meta.db_table)}"  # noqa: S608
        f" ({', '.join(quote(name) for name in names)})"
        f" SELECT {', '.join(select)} FROM unnest({unnest})"
        f" AS r({', '.join(quote(name) for name in per_row)}) RETURNING id, public_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = {public_id: pk for pk, public_id in cursor.fetchall()}
    for row in rows:
        row.pk = ids[row.public_id]
        row._state.adding = False


# The development outbox is where its messages end up: what it accepted is delivered, and it
# says so as a provider's delivery webhook would (so funnels count it as delivered).
OUTBOX_PROVIDER = "outbox"


def announce(delivery: Delivery) -> None:
    """Send ``message_status_changed`` for the row's current status, after commit."""
    company_id, delivery_id = delivery.company_id, delivery.pk
    status, metadata = delivery.status, dict(delivery.metadata)
    occurred_at = delivery.sent_at or timezone.now()
    statuses = [status]
    if status == DeliveryStatus.SENT and delivery.provider == OUTBOX_PROVIDER:
        statuses.append(DeliveryStatus.DELIVERED)

    def send() -> None:
        for each in statuses:
            message_status_changed.send(
                sender=Delivery,
                company_id=company_id,
                delivery_id=delivery_id,
                status=each,
                metadata=metadata,
                occurred_at=occurred_at,
            )

    transaction.on_commit(send)
