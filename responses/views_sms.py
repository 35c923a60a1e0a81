"""Twilio's inbound message webhook: replies to SMS/WhatsApp invitations (no login).

Signed by Twilio (``notifications.twilio_webhooks.twilio_webhook``: 403 and nothing recorded
without a valid ``X-Twilio-Signature``). The receiving number names the company; the
conversation itself is ``responses.sms_replies``. The answer is TwiML: Twilio sends its
``<Message>`` elements back to the sender.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from notifications.twilio_webhooks import (
    company_for_receiver,
    twilio_forbidden,
    twilio_signature_valid,
    twilio_webhook,
    twiml,
)
from responses.sms_replies import sms_reply_handle

logger = logging.getLogger(__name__)

# How long a message id is remembered against duplicate deliveries (seconds).
SEEN_FOR = 24 * 3600


@twilio_webhook
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    found = company_for_receiver(
        to=request.POST.get("To", ""),
        messaging_service_sid=request.POST.get("MessagingServiceSid", ""),
    )
    if not twilio_signature_valid(request, company=found[0] if found else None):
        return twilio_forbidden(request)
    if found is None:
        logger.info("Twilio inbound message to a number no company sends from")
        return twiml()
    company, channel = found
    # Twilio may deliver the same message twice (a retried webhook): act on it once.
    key = f"twilio:inbound:{request.POST.get('MessageSid', '')}"
    if request.POST.get("MessageSid") and not cache.add(key, 1, timeout=SEEN_FOR):
        return twiml()
    try:
        reply = sms_reply_handle(
            company=company,
            channel=channel,
            from_address=request.POST.get("From", ""),
            body=request.POST.get("Body", ""),
            opt_out_type=request.POST.get("OptOutType", ""),
        )
    except BaseException:
        cache.delete(key)  # not acted on: a retry may try again
        raise
    return twiml(*reply.messages)
