"""Twilio's webhooks: signature checks, the status callback, and who owns a receiving number.

Twilio signs every webhook (``X-Twilio-Signature``: HMAC-SHA1 of the URL it called and the
posted parameters, keyed with the account's auth token). We check it with twilio's own
``RequestValidator`` against the public URL built from ``SITE_URL`` (behind a proxy the
request's own host and scheme are not what Twilio called). A bad or missing signature is a
403 and nothing is recorded.

The inbound message webhook itself (replies: answers, STOP, HELP) lives in the responses
app, which records answers; it uses ``twilio_webhook`` and ``company_for_receiver`` here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from companies import rls
from companies.credentials import CredentialUnreadable
from notifications.models import Channel, Delivery, DeliveryEvent, DeliveryStatus
from notifications.receivers import STATUS_RANK
from notifications.services import normalize_address, suppression_add
from notifications.signals import message_status_changed
from notifications.sms import TWILIO_UNSUBSCRIBED, WHATSAPP_PREFIX

if TYPE_CHECKING:
    from companies.models import Company

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "HTTP_X_TWILIO_SIGNATURE"
# Twilio's MessageStatus → the Delivery status it moves to (others are only recorded).
TWILIO_STATUS = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.OPENED,  # WhatsApp read receipts
    "undelivered": DeliveryStatus.BOUNCED,
    "failed": DeliveryStatus.BOUNCED,
}


def public_url(request: HttpRequest) -> str:
    """The URL Twilio called: ``SITE_URL`` plus the path and query it asked for."""
    return settings.SITE_URL.rstrip("/") + request.get_full_path()


def twilio_signature(url: str, params: Mapping[str, str]) -> str:
    """The signature Twilio would send for a post of ``params`` to ``url`` (the dev outbox
    signs the replies typed there with it)."""
    return str(RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, dict(params)))


def twilio_signature_valid(request: HttpRequest, *, company: Company | None) -> bool:
    """Whether Twilio signed this request with the auth token of the account that sent for
    ``company`` (its own Twilio account, else the platform's; None: the platform's)."""
    from notifications.sms import twilio_credentials

    signature = request.META.get(SIGNATURE_HEADER, "")
    try:
        _sid, auth_token = twilio_credentials(company)
    except CredentialUnreadable:
        return False
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    # Every posted value; Twilio never repeats a key in these webhooks.
    params = {key: request.POST.get(key, "") for key in request.POST}
    return bool(validator.validate(public_url(request), params, signature))


def twilio_forbidden(request: HttpRequest) -> HttpResponse:
    logger.warning("Twilio webhook with a bad or missing signature: %s", request.path)
    return HttpResponseForbidden("invalid signature")


def twilio_webhook(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """POST only and no CSRF token (Twilio has none). The view checks the signature with
    ``twilio_signature_valid`` once it knows whose account the request is for."""
    return csrf_exempt(require_POST(view))


def twiml(*messages: str) -> HttpResponse:
    """A TwiML answer that replies with ``messages`` (none: an empty ``<Response/>``)."""
    from twilio.twiml.messaging_response import MessagingResponse

    answer = MessagingResponse()
    for text in messages:
        answer.message(text)
    return HttpResponse(str(answer), content_type="application/xml")


def company_for_receiver(*, to: str, messaging_service_sid: str = "") -> tuple[Company, str] | None:
    """The company that owns the number a message was sent to, and the channel.

    A Messaging Service's numbers are named by its SID (Twilio sends it with the message);
    otherwise the company's number (``whatsapp:+…`` for WhatsApp). In the development outbox
    ``dev:<slug>`` names a company that has no sender of its own.
    """
    from companies.models import Company

    channel = Channel.SMS
    if to.startswith(WHATSAPP_PREFIX):
        channel, to = Channel.WHATSAPP, to[len(WHATSAPP_PREFIX) :]
    found: Company | None = None
    if settings.SMS_PROVIDER == "outbox" and to.startswith("dev:"):
        found = Company.objects.filter(slug=to[len("dev:") :]).first()
    else:
        if messaging_service_sid and channel == Channel.SMS:
            found = Company.objects.filter(sms_sender=messaging_service_sid).first()
        if found is None:
            field = "whatsapp_sender" if channel == Channel.WHATSAPP else "sms_sender"
            number = normalize_address(channel, to) if to.startswith("+") else to.strip()
            found = Company.objects.filter(**{field: number}).first()
    if found is None:
        return None
    # The inbound message's choke point: the rest of the request is this company's.
    rls.activate_company(found.pk)
    return found, channel


@twilio_webhook
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback for one message (``?d=<delivery public id>``).

    Recorded as a DeliveryEvent; moves the Delivery forward (never back) and announces the
    change; an error 21610 (the recipient had sent STOP) suppresses the number.
    """
    delivery = (
        Delivery.objects.unscoped(reason="Twilio callback: the signed URL names the delivery")
        .filter(public_id=request.GET.get("d", ""), channel__in=[Channel.SMS, Channel.WHATSAPP])
        .select_related("company")
        .first()
    )
    if not twilio_signature_valid(request, company=delivery.company if delivery else None):
        return twilio_forbidden(request)
    if delivery is not None:
        rls.activate_company(delivery.company_id)  # the callback's choke point
    sid = request.POST.get("MessageSid", "")
    if delivery is None or (
        delivery.provider_message_id and sid and delivery.provider_message_id != sid
    ):
        logger.info("Twilio status for an unknown message %r", sid)
        return HttpResponse(status=204)
    twilio_status_record(
        delivery=delivery,
        twilio_status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", ""),
        occurred_at=timezone.now(),
    )
    return HttpResponse(status=204)


def twilio_status_record(
    *, delivery: Delivery, twilio_status: str, error_code: str, occurred_at: datetime
) -> None:
    company = delivery.company
    detail = f"Twilio error {error_code}" if error_code else ""
    with transaction.atomic():
        DeliveryEvent.objects.create(
            company=company,
            delivery=delivery,
            event=twilio_status[:32] or "unknown",
            occurred_at=occurred_at,
            detail=detail,
        )
        status = TWILIO_STATUS.get(twilio_status)
        if status is not None:
            lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
            moved = (
                Delivery.objects.for_company(company)
                .filter(pk=delivery.pk, status__in=lower)
                .update(status=status, error=detail, updated_at=timezone.now())
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
        if error_code == str(TWILIO_UNSUBSCRIBED):
            suppression_add(
                company=company,
                channel=delivery.channel,
                address=delivery.to,
                reason="stopped",
                detail=f"Twilio {TWILIO_UNSUBSCRIBED}: the recipient replied STOP",
            )
