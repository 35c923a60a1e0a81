"""Reads for notifications: the development outbox (system data, no company), suppressions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from notifications.models import OutboxMessage, Suppression
from notifications.services import normalize_address, suppression_address_hash

if TYPE_CHECKING:
    from companies.models import Company

OUTBOX_PAGE_LIMIT = 200


def outbox_messages(*, limit: int = OUTBOX_PAGE_LIMIT) -> QuerySet[OutboxMessage]:
    """The newest messages first (the outbox shows at most ``limit``)."""
    return OutboxMessage.objects.order_by("-created_at", "-id")[:limit]


def outbox_message_get(*, message_id: str) -> OutboxMessage | None:
    return OutboxMessage.objects.filter(pk=message_id).first()


def suppressed_addresses(*, company: Company, channel: str, addresses: Iterable[str]) -> set[str]:
    """Which of ``addresses`` the company must not message on ``channel`` (one query).

    The addresses are compared normalised, and by hash too (an erased person's suppression
    keeps only that); the returned set holds them as given, so that a caller can test
    membership with its own values.
    """
    by_normalized: dict[str, list[str]] = {}
    for address in addresses:
        normalized = normalize_address(channel, address)
        by_normalized.setdefault(normalized, []).append(address)
        hashed = suppression_address_hash(
            company_id=company.pk, channel=channel, normalized=normalized
        )
        by_normalized.setdefault(hashed, []).append(address)
    if not by_normalized:
        return set()
    found = Suppression.objects.for_company(company).filter(
        channel=channel, address__in=list(by_normalized)
    )
    return {
        original
        for normalized in found.values_list("address", flat=True)
        for original in by_normalized[normalized]
    }
