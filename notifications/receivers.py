"""Provider tracking webhooks (anymail's ``tracking`` signal) into the delivery ledger.

Connected in ``NotificationsConfig.ready``. anymail's views authenticate the post (HTTP basic
auth, ANYMAIL["WEBHOOK_SECRET"]) and normalise every provider's events; here each event is
matched to its Delivery, recorded as a DeliveryEvent, moves the Delivery's status forward
(never back: a late "delivered" after "opened" changes nothing) and, for bounces, spam
complaints and unsubscribes, suppresses the address for the delivery's company.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import AnymailTrackingEvent
from django.db import transaction
from django.utils import timezone

from companies import rls
from notifications.models import Channel, Delivery, DeliveryEvent, DeliveryStatus
from notifications.services import normalize_address, suppression_add
from notifications.signals import message_status_changed

logger = logging.getLogger(__name__)

# anymail event_type -> the Delivery status it moves to (others are only recorded).
EVENT_STATUS = {
    "delivered": DeliveryStatus.DELIVERED,
    "opened": DeliveryStatus.OPENED,
    "clicked": DeliveryStatus.CLICKED,
    "bounced": DeliveryStatus.BOUNCED,
    "complained": DeliveryStatus.COMPLAINED,
    "rejected": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}
# How far along a delivery is; a status only replaces a lower one.
STATUS_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.OPENED: 4,
    DeliveryStatus.CLICKED: 5,
    DeliveryStatus.FAILED: 6,
    DeliveryStatus.BOUNCED: 6,
    DeliveryStatus.COMPLAINED: 7,
    DeliveryStatus.SUPPRESSED: 8,
}
# anymail event_type -> the suppression it causes.
EVENT_SUPPRESSION = {
    "bounced": "bounced",
    "complained": "complained",
    "unsubscribed": "unsubscribed",
}


def delivery_for_event(event: AnymailTrackingEvent) -> Delivery | None:
    """The Delivery an event is about, across companies.

    Unscoped on purpose: a webhook arrives without a company; the provider's message id
    (which we stored when the provider accepted the message) is what names the row, and the
    row names its company. The recipient narrows it further because some providers (Mailgun)
    give one id to a whole batch.
    """
    if not event.message_id:
        return None
    rows = Delivery.objects.unscoped(
        reason="provider webhook: the provider's message id identifies the company's row"
    ).filter(channel=Channel.EMAIL, provider_message_id=str(event.message_id))
    if event.recipient:
        rows = rows.filter(to=normalize_address(Channel.EMAIL, event.recipient))
    delivery = rows.select_related("company").order_by("-created_at").first()
    if delivery is not None:
        rls.activate_company(delivery.company_id)  # the provider webhook's choke point
    return delivery


def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    delivery = delivery_for_event(event)
    if delivery is None:
        # Mail we did not send through the ledger (account emails) or an unknown id.
        logger.info(
            "%s %s event for unknown message %r", esp_name, event.event_type, event.message_id
        )
        return
    company = delivery.company
    occurred_at = event.timestamp or timezone.now()
    detail = str(event.description or event.mta_response or event.reject_reason or "")
    with transaction.atomic():
        Delivery.objects.for_company(company).select_for_update().filter(pk=delivery.pk).first()
        # Providers post an event again when our answer was slow or lost: the same event of
        # the same message at the same moment is that repeat, and changes nothing.
        repeat = DeliveryEvent.objects.for_company(company).filter(
            delivery=delivery, event=str(event.event_type)[:32], occurred_at=occurred_at
        )
        if repeat.exists():
            return
        DeliveryEvent.objects.create(
            company=company,
            delivery=delivery,
            event=str(event.event_type)[:32],
            occurred_at=occurred_at,
            detail=detail[:500],
        )
        status = EVENT_STATUS.get(str(event.event_type))
        if status is not None:
            lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
            moved = (
                Delivery.objects.for_company(company)
                .filter(pk=delivery.pk, status__in=lower)
                .update(status=status, updated_at=timezone.now())
            )
            if moved:
                metadata = dict(delivery.metadata)
                transaction.on_commit(
                    lambda: message_status_changed.send(
                        sender=Delivery,
                        company_id=company.pk,
                        delivery_id=delivery.pk,
                        status=status,
                        metadata=metadata,
                        occurred_at=occurred_at,
                    )
                )
        reason = EVENT_SUPPRESSION.get(str(event.event_type))
        if reason is not None:
            suppression_add(
                company=company,
                channel=Channel.EMAIL,
                address=delivery.to,
                reason=reason,
                detail=f"{esp_name}: {detail}"[:255],
            )
