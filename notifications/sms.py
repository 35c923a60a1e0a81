"""Sending SMS and WhatsApp through Twilio: the same ledger and retry contract as email.

The interface::

    sms_send(*, company: Company, messages: Sequence[OutgoingSms]) -> list[Delivery]

    OutgoingSms(to, body, channel="sms", metadata={}, delivery_id=None,
                content_sid="", content_variables={})

``to`` is a phone number (E.164; a WhatsApp message gets the ``whatsapp:`` prefix here).
A WhatsApp message that starts a conversation must use an approved content template
(``content_sid`` and its ``content_variables``); ``body`` is then what the ledger and the
development outbox show.

**Sender.** The company's (``Company.sms_sender``): a Messaging Service SID goes as
``MessagingServiceSid``, a number or short code as ``From``; WhatsApp goes from
``whatsapp:<Company.whatsapp_sender>``. The platform account's credentials come from
settings (``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``). Every message carries its own
``StatusCallback`` (``SITE_URL`` + the status webhook + the delivery's public id), which
moves the ledger row along (notifications/twilio_webhooks.py).

**Throughput.** One shared token bucket per sender (notifications/ratelimit.py) at the
sender's messages per second (``Company.sms_rate``: long code 1, toll-free 3, short code
100, a Messaging Service as configured), so every worker together keeps to it. A message
that cannot get a token within ``SMS_RATE_TIMEOUT`` ends the call with
``TransientSendError``.

**Ledger and retries** (as ``notifications.email``). Each message gets a Delivery row before
any provider call: ``suppressed`` for a suppressed number, ``failed`` for an invalid one or
when the company has no sender. A row is ``sending`` (attempts + 1) right before its call,
then ``sent`` (Twilio's message SID) or ``failed``. Twilio's answers: 21610 (the recipient
replied STOP to the sender) suppresses the number for the company and the row is
``suppressed``; an invalid number and other 4xx refusals fail the row for good; network
errors, 429, 401/403 and 5xx raise ``TransientSendError`` after every undecided row is back
to ``queued``. Retry with ``delivery_id`` set; a row that is not ``queued`` is returned as it
is and never sent again.

In the embedded default (``SMS_PROVIDER=outbox``) messages are stored in the development
outbox instead, where a reply can be typed as the customer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import phonenumbers
from django.conf import settings
from django.urls import reverse
from redis.exceptions import RedisError
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from companies.credentials import CredentialUnreadable
from notifications.ledger import LedgerEntry, ledger_write
from notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    OutboxChannel,
    SuppressionReason,
)
from notifications.ratelimit import RateLimitTimeout, TokenBucket
from notifications.selectors import suppressed_addresses
from notifications.services import normalize_address, outbox_record, suppression_add
from notifications.transport import (
    SMS_CHANNELS,
    TRANSIENT_HTTP_STATUS,
    TransientSendError,
    calls_begin,
    outcome_set,
    outcomes_save,
    request_may_have_arrived,
    requeue,
)

if TYPE_CHECKING:
    from twilio.http import HttpClient

    from companies.models import Company

logger = logging.getLogger(__name__)

WHATSAPP_PREFIX = "whatsapp:"
# Twilio error codes (https://www.twilio.com/docs/api/errors).
TWILIO_UNSUBSCRIBED = 21610  # the recipient replied STOP to this sender
TWILIO_INVALID_NUMBER = frozenset({21211, 21614, 21217, 21401, 21407, 21421, 63024})
# A Messaging Service SID; anything else is a number (or short code) sent as From.
_SERVICE_PREFIX = "MG"


@dataclass(frozen=True)
class OutgoingSms:
    to: str
    body: str
    channel: str = Channel.SMS
    # Carried back in message_status_changed and stored on the Delivery (e.g. the invitation).
    metadata: dict[str, str] = field(default_factory=dict)
    # Reuse this Delivery row (a retry after TransientSendError) instead of creating one.
    delivery_id: int | None = None
    # WhatsApp business-initiated messages: an approved content template and its variables.
    content_sid: str = ""
    content_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sender:
    """Where a company's messages of one channel come from."""

    address: str  # MG… (Messaging Service), +E.164, a short code, or whatsapp:+E.164
    rate: float  # messages per second, shared by all workers

    @property
    def is_service(self) -> bool:
        return self.address.startswith(_SERVICE_PREFIX)


def sms_sender(*, company: Company, channel: str = Channel.SMS) -> Sender | None:
    """The company's sender on ``channel``, or None when it has not set one up.

    In the development outbox a company without a sender sends from ``dev:<slug>``, so that
    replies typed in the outbox still find their company.
    """
    if channel == Channel.WHATSAPP:
        if company.whatsapp_sender:
            return Sender(address=WHATSAPP_PREFIX + company.whatsapp_sender, rate=company.sms_rate)
    elif company.sms_sender:
        return Sender(address=company.sms_sender, rate=company.sms_rate)
    if settings.SMS_PROVIDER == "outbox":
        prefix = WHATSAPP_PREFIX if channel == Channel.WHATSAPP else ""
        return Sender(address=f"{prefix}dev:{company.slug}", rate=company.sms_rate)
    return None


def sender_bucket(sender: Sender) -> TokenBucket:
    """The shared bucket of one sender: ``rate`` per second and no burst (capacity 1), so
    that the rate holds over every interval, not just on average: Twilio queues what comes
    faster than a sender's rate, and a long queue delays (and may expire) messages."""
    return TokenBucket(f"sms:{sender.address}", rate=sender.rate, capacity=1)


def status_callback_url(delivery: Delivery) -> str:
    """The absolute URL Twilio posts this message's status changes to."""
    return f"{settings.SITE_URL}{reverse('notifications:twilio-status')}?d={delivery.public_id}"


class _RebasedHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending to ``TWILIO_API_URL`` instead (a local fake)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(pool_connections=True, timeout=settings.SMS_REQUEST_TIMEOUT)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        for real in ("https://api.twilio.com", "https://messaging.twilio.com"):
            if url.startswith(real):
                url = self.base_url + url[len(real) :]
        return super().request(method, url, *args, **kwargs)


def twilio_http_client() -> HttpClient:
    """The HTTP client the twilio library uses, with timeouts (twilio's own has none: a
    stalled call would hold a worker). Tests replace this."""
    if settings.TWILIO_API_URL:
        return _RebasedHttpClient(settings.TWILIO_API_URL)
    return TwilioHttpClient(pool_connections=True, timeout=settings.SMS_REQUEST_TIMEOUT)


def twilio_credentials(company: Company | None) -> tuple[str, str]:
    """(account SID, auth token): the company's own Twilio account if it has one, else the
    platform's. Raises ``CredentialUnreadable`` when the stored token cannot be decrypted."""
    from companies.credentials import secret_decrypt

    if company is not None and company.twilio_account_sid and company.twilio_auth_token_encrypted:
        return company.twilio_account_sid, secret_decrypt(company.twilio_auth_token_encrypted)
    return settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN


def twilio_client(company: Company | None = None) -> Client:
    account_sid, auth_token = twilio_credentials(company)
    return Client(account_sid, auth_token, http_client=twilio_http_client())


def valid_phone(address: str) -> bool:
    try:
        number = phonenumbers.parse(address.strip(), None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


# --- Sending ----------------------------------------------------------------------------------


def sms_send(*, company: Company, messages: Sequence[OutgoingSms]) -> list[Delivery]:
    """Send ``messages`` for ``company``; the Delivery rows in the order of ``messages``.

    See the module docstring for the ledger and the retry contract. Call it outside
    ``transaction.atomic``.
    """
    for message in messages:
        if message.channel not in SMS_CHANNELS:
            raise ValueError(f"sms_send() sends SMS and WhatsApp, not {message.channel!r}")
    if not messages:
        return []
    senders: dict[str, Sender | None] = {
        channel: sms_sender(company=company, channel=channel) for channel in SMS_CHANNELS
    }
    deliveries = _ledger_rows(company=company, messages=messages, senders=senders)
    pending = [
        (message, delivery)
        for message, delivery in zip(messages, deliveries, strict=True)
        if delivery.status == DeliveryStatus.QUEUED
    ]
    client = None
    if pending and settings.SMS_PROVIDER == "twilio":
        try:
            client = twilio_client(company)
        except CredentialUnreadable as err:  # the key changed: the company re-enters it
            raise TransientSendError(str(err), deliveries=deliveries) from err
    for message, delivery in pending:
        sender = senders[message.channel]
        assert sender is not None  # rows without a sender failed in the ledger
        try:
            # The development outbox has no provider to protect (and sends inline, in the
            # request that started the send).
            if client is not None:
                sender_bucket(sender).acquire(1, timeout=settings.SMS_RATE_TIMEOUT)
        except (RateLimitTimeout, RedisError) as err:
            # This row and the later ones were not claimed: they are still queued.
            raise TransientSendError(
                f"rate limit: {err}", deliveries=deliveries, retry_after=settings.SMS_RATE_TIMEOUT
            ) from err
        try:
            _send_one(
                company=company, message=message, delivery=delivery, sender=sender, client=client
            )
        except TransientSendError as err:
            raise TransientSendError(str(err), deliveries=deliveries) from err
    return deliveries


def _ledger_rows(
    *,
    company: Company,
    messages: Sequence[OutgoingSms],
    senders: dict[str, Sender | None],
) -> list[Delivery]:
    """One Delivery per message (notifications.ledger): reused on a retry or created,
    committed before any call; suppressed or invalid numbers and a missing sender refused."""
    suppressed: dict[str, set[str]] = {
        channel: suppressed_addresses(
            company=company,
            channel=channel,
            addresses=[m.to for m in messages if m.channel == channel],
        )
        for channel in SMS_CHANNELS
    }

    def refusal(message: OutgoingSms) -> tuple[str, str] | None:
        if message.to in suppressed[message.channel]:
            return DeliveryStatus.SUPPRESSED, "suppressed number"
        if not valid_phone(message.to):
            return DeliveryStatus.FAILED, "invalid phone number"
        if senders[message.channel] is None:
            return DeliveryStatus.FAILED, f"the company has no {message.channel} sender set up"
        return None

    return ledger_write(
        company=company,
        entries=[
            LedgerEntry(
                fields={
                    "channel": message.channel,
                    "to": normalize_address(message.channel, message.to)[:254],
                    "subject": message.body[:255],
                    "provider": settings.SMS_PROVIDER,
                    "metadata": dict(message.metadata),
                },
                delivery_id=message.delivery_id,
                refusal=refusal(message),
            )
            for message in messages
        ],
    )


def _send_one(
    *,
    company: Company,
    message: OutgoingSms,
    delivery: Delivery,
    sender: Sender,
    client: Client | None,
) -> None:
    claimed, _call_ref = calls_begin(company, [delivery])
    if not claimed:
        return  # another worker has this row
    callback = status_callback_url(delivery)
    to = normalize_address(message.channel, message.to)
    if message.channel == Channel.WHATSAPP:
        to = WHATSAPP_PREFIX + to
    if client is None:  # the development outbox
        stored = outbox_record(
            channel=OutboxChannel.WHATSAPP
            if message.channel == Channel.WHATSAPP
            else OutboxChannel.SMS,
            to=to,
            text=message.body,
            headers={
                "From": sender.address,
                "StatusCallback": callback,
                **({"ContentSid": message.content_sid} if message.content_sid else {}),
            },
        )
        _finish(company, delivery, status=DeliveryStatus.SENT, message_id=f"SM{stored.id}")
        return
    params: dict[str, Any] = {"to": to, "status_callback": callback}
    if sender.is_service:
        params["messaging_service_sid"] = sender.address
    else:
        params["from_"] = sender.address
    if message.content_sid:
        params["content_sid"] = message.content_sid
        params["content_variables"] = json.dumps(message.content_variables, ensure_ascii=False)
    else:
        params["body"] = message.body
    try:
        sent = client.messages.create(**params)
    except TwilioRestException as err:
        _refused(company=company, message=message, delivery=delivery, err=err)
        return
    except (TwilioException, OSError) as err:  # network (requests' errors are OSErrors)
        if request_may_have_arrived(err):
            # Twilio may have the message: the row stays "sending" (deliveries_resolve).
            logger.warning("outcome unknown for %s: %s", delivery.public_id, err)
            return
        requeue(company, claimed)
        raise TransientSendError(f"Twilio unreachable: {err}", deliveries=[]) from err
    _finish(company, delivery, status=DeliveryStatus.SENT, message_id=str(sent.sid or ""))


def _refused(
    *, company: Company, message: OutgoingSms, delivery: Delivery, err: TwilioRestException
) -> None:
    """Twilio answered with an error: retry later (5xx, 429, credentials), or the row's
    outcome for good (the recipient unsubscribed, an invalid number, another refusal)."""
    status = err.status
    if status >= 500 or status in TRANSIENT_HTTP_STATUS:
        requeue(company, [delivery])
        raise TransientSendError(
            f"Twilio unavailable ({status}, {err.code}): {err.msg}", deliveries=[]
        ) from err
    if err.code == TWILIO_UNSUBSCRIBED:
        suppression_add(
            company=company,
            channel=message.channel,
            address=message.to,
            reason=SuppressionReason.STOPPED,
            detail=f"Twilio {err.code}: the recipient replied STOP",
        )
        _finish(company, delivery, status=DeliveryStatus.SUPPRESSED, error="unsubscribed")
        return
    if err.code in TWILIO_INVALID_NUMBER:
        reason = f"invalid phone number (Twilio {err.code}): {err.msg}"
    else:
        reason = f"Twilio refused the message ({status}, {err.code}): {err.msg}"
    _finish(company, delivery, status=DeliveryStatus.FAILED, error=reason)


def _finish(
    company: Company,
    delivery: Delivery,
    *,
    status: str,
    error: str = "",
    message_id: str = "",
) -> None:
    outcome_set(delivery, status=status, error=error, message_id=message_id)
    outcomes_save(company, [delivery])
