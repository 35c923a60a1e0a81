"""Reads for notifications. For now: the development outbox (system data, no company)."""

from __future__ import annotations

from django.db.models import QuerySet

from notifications.models import OutboxMessage

OUTBOX_PAGE_LIMIT = 200


def outbox_messages(*, limit: int = OUTBOX_PAGE_LIMIT) -> QuerySet[OutboxMessage]:
    """The newest messages first (the outbox shows at most ``limit``)."""
    return OutboxMessage.objects.order_by("-created_at", "-id")[:limit]


def outbox_message_get(*, message_id: str) -> OutboxMessage | None:
    return OutboxMessage.objects.filter(pk=message_id).first()
