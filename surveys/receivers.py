"""News from the post office about messages the surveys app sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from surveys.services import invitation_record_status


def on_message_status_changed(
    sender: Any,
    *,
    company_id: int,
    status: str,
    metadata: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    **kwargs: Any,
) -> None:
    """A delivery of an invitation changed status: put it on the invitation's timeline.

    Only provider news counts here (delivered, opened, clicked, bounced, complained…): the
    send's own outcome (sent, failed, suppressed) is recorded by ``invitations_send``.
    Deliveries that are not an invitation's (team emails, alerts) carry no ``invitation``.
    """
    public_id = (metadata or {}).get("invitation")
    if not public_id or status in {"queued", "sending", "sent", "failed", "suppressed"}:
        return
    invitation_record_status(
        company_id=company_id,
        invitation_public_id=str(public_id),
        status=status,
        occurred_at=occurred_at or timezone.now(),
    )
