"""Reads of the audit log: always one company's entries, newest first, by keyset pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from audit.models import AuditEntry
from companies.models import Company
from companies.tenancy import TenantQuerySet

PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor_user_id: int | None = None
    actor_api_key_id: int | None = None
    system_only: bool = False
    target_type: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def audit_entries(*, company: Company, filters: AuditFilters) -> TenantQuerySet[AuditEntry]:
    rows = AuditEntry.objects.for_company(company)
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.actor_user_id is not None:
        rows = rows.filter(actor_user_id=filters.actor_user_id)
    if filters.actor_api_key_id is not None:
        rows = rows.filter(actor_api_key_id=filters.actor_api_key_id)
    if filters.system_only:
        rows = rows.filter(actor_kind="system")
    if filters.target_type:
        rows = rows.filter(target_type=filters.target_type)
    if filters.since is not None:
        rows = rows.filter(created_at__gte=filters.since)
    if filters.until is not None:
        rows = rows.filter(created_at__lt=filters.until)
    return rows.order_by("-created_at", "-id")


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str  # "" on the last page


def _cursor_of(entry: AuditEntry) -> str:
    # Microseconds since the epoch: URL-safe as it is (an ISO time's "+" is not).
    micros = (entry.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{entry.pk}"


def cursor_parse(text: str) -> tuple[datetime, int] | None:
    """A cursor this module made, else None (the first page)."""
    micros, _sep, pk = text.partition("_")
    if not (micros.isascii() and micros.isdigit() and pk.isascii() and pk.isdigit()):
        return None
    try:
        when = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        return None
    return when, int(pk)


def audit_page(
    *,
    company: Company,
    filters: AuditFilters,
    after: tuple[datetime, int] | None = None,
    size: int = PAGE_SIZE,
) -> AuditPage:
    """One page of entries older than ``after``: one query, whatever the table's size."""
    rows = audit_entries(company=company, filters=filters)
    if after is not None:
        when, pk = after
        rows = rows.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk))
    found = list(rows[: size + 1])
    more = len(found) > size
    found = found[:size]
    return AuditPage(entries=found, next_cursor=_cursor_of(found[-1]) if more else "")


def audit_entries_iter(*, company: Company, filters: AuditFilters) -> Iterator[AuditEntry]:
    """Every matching entry, read in chunks (the CSV export)."""
    return audit_entries(company=company, filters=filters).iterator(chunk_size=2000)
