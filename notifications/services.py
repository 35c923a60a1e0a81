"""Writes for notifications. For now: the development outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from notifications.models import OutboxChannel, OutboxMessage


def outbox_record(
    *,
    channel: str,
    to: str | Sequence[str],
    subject: str = "",
    text: str = "",
    html: str = "",
    headers: Mapping[str, str] | None = None,
) -> OutboxMessage:
    """Store a message in the development outbox instead of sending it.

    No ``company`` keyword: the outbox is a system tool of the embedded default, not tenant
    data (see ``OutboxMessage``). SMS and WhatsApp senders call this in the embedded default;
    email arrives through ``notifications.backends.OutboxEmailBackend``.
    """
    if channel not in OutboxChannel.values:
        raise ValueError(f"unknown outbox channel {channel!r}")
    return OutboxMessage.objects.create(
        channel=channel,
        to=to if isinstance(to, str) else list(to),
        subject=subject,
        text=text,
        html=html,
        headers=dict(headers or {}),
    )


def outbox_clear() -> int:
    """Empty the development outbox; returns how many messages were removed."""
    deleted, _by_model = OutboxMessage.objects.all().delete()
    return deleted
