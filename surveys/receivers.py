"""News from the post office about messages the surveys app sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from surveys.services.invitations import invitation_record_status


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


# Suppression reasons that mean the person asked to hear no more (not a bounce or complaint).
UNSUBSCRIBE_REASONS = frozenset({"unsubscribed", "stopped"})


def on_address_suppressed(
    sender: Any, *, company_id: int, channel: str, address: str, reason: str, **kwargs: Any
) -> None:
    """An address unsubscribed (link, List-Unsubscribe, STOP): ``contact.unsubscribed`` for
    each of the company's contacts with that address, to its subscribed webhook endpoints."""
    if reason not in UNSUBSCRIBE_REASONS:
        return
    from companies.models import Company
    from notifications.webhooks import webhook_event_emit, webhook_has_subscribers
    from notifications.webhooks_models import WebhookEventType
    from surveys.models import Contact

    event = WebhookEventType.CONTACT_UNSUBSCRIBED
    company = Company.objects.filter(pk=company_id).first()
    if company is None or not webhook_has_subscribers(company=company, event_type=event):
        return
    contacts = Contact.objects.for_company(company)
    if channel == "email":
        contacts = contacts.filter(email__iexact=address)
    else:
        contacts = contacts.filter(phone=address)
    for contact in contacts.order_by("pk"):
        webhook_event_emit(
            company=company,
            event_type=event,
            data={
                "contact": {
                    "id": contact.public_id,
                    "email": contact.email,
                    "phone": contact.phone,
                    "name": contact.name,
                },
                "channel": channel,
                "reason": reason,
            },
        )


def on_address_suppressed_autopilot(
    sender: Any, *, company_id: int, channel: str, address: str, **kwargs: Any
) -> None:
    """Any suppression (unsubscribe, bounce, complaint, STOP) stops the recurring
    programmes that reach the address on that channel."""
    from companies.models import Company
    from surveys.services.autopilot import autopilot_members_stop_for_address

    company = Company.objects.filter(pk=company_id).first()
    if company is not None:
        autopilot_members_stop_for_address(company=company, channel=channel, address=address)
