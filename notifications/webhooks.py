"""Outbound webhooks (Standard Webhooks) and Slack posts: endpoints, fan-out, signed
delivery with retries, the delivery log and the automatic disabling.

The post office knows nothing about surveys: callers give a company, an event type and the
event's ``data`` (public ids only), see ``webhook_event_emit``.

**Delivery.** Every event becomes one ``WebhookMessage`` per subscribed, enabled endpoint of
that company, written (in the caller's transaction, if any) before anything is sent. Each
attempt is claimed first: ``UPDATE … SET status='sending', attempts=n+1 WHERE status='pending'
AND attempts=n``; only the worker whose update changed the row sends, so a task delivered
twice, a racing sweep or a late task of an earlier attempt never send the same attempt
twice. The first attempt is a task enqueued on commit; later ones are due rows
(``next_attempt_at``) that the beat sweep (``webhooks_deliver_due``, every 15 s) enqueues.

**Retries.** A timeout, a network error, a 3xx (no redirect is followed), 408, 429 and 5xx
are retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (Svix's schedule: eight
attempts over about 27 hours); another 4xx, or an address the hardened client refuses, fails
the message at once. Receivers dedupe by ``webhook-id``: it stays the same on every retry,
while ``webhook-timestamp`` and the signature are those of the attempt.

**Disabling.** An endpoint whose attempts have all failed for ``DISABLE_AFTER`` (a day) is
disabled when a message finally fails, and its company's owners and admins are emailed, once
(the enabled → disabled update is claimed). A 410 Gone disables it at once (the receiver
says it is gone for good). A success in between starts the clock again.

**Delighted format.** An endpoint may choose ``payload_format="delighted"``: its body is
Delighted's ``{"event_type", "event_id", "event_data"}`` and it is signed with
``X-Delighted-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, keyed with the
endpoint's secret used as is (the whole string, as a receiver used its Delighted API key, which
we cannot sign with: we keep API keys only as hashes). An admin may paste the value the receiver
already verifies with instead of a generated one. The post office builds no such body: the app
that knows the objects registers a builder (``webhook_format_register``) that turns one of our
events into Delighted's ``event_data``; it runs at emit time in the caller's transaction, so
the stored message is exactly what every attempt sends. ``event_id`` (64 hex) is the SHA-256 of
the message id: the same on every retry, for receivers that dedupe.

**Crashes.** A row left ``sending`` for ``STALE_AFTER`` (its worker died mid-request: the
outcome is unknown) goes back to pending for a webhook (at-least-once; the id dedupes) and is
failed for a Slack post (a chat message must never appear twice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.credentials import CredentialUnreadable, secret_decrypt, secret_encrypt
from companies.mail import render_email
from companies.wake import wake
from notifications.email import OutgoingEmail, email_send
from notifications.http_client import HttpResult, UnsafeURL, post_json, url_check
from notifications.transport import TransientSendError
from notifications.webhooks_models import (
    DELIGHTED_EVENT_TYPES,
    PING_EVENT,
    DisabledReason,
    MessageKind,
    MessageStatus,
    PayloadFormat,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEventType,
    WebhookMessage,
    new_message_id,
)

if TYPE_CHECKING:
    from companies.models import Company

logger = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
DISABLE_AFTER = timedelta(days=1)
# A woken attempt not started by then is woken again by the sweep (the claim dedupes): its
# message was lost (Redis down or restarted).
ENQUEUE_LEASE = timedelta(seconds=30)
# An attempt takes at most WEBHOOK_TOTAL_TIMEOUT (15 s): one "sending" for longer belongs to a
# worker that died.
STALE_AFTER = timedelta(minutes=1)
DELIVER_TASK = "notifications.webhook_deliver"
# The delivery log keeps finished messages (and their attempts) this long.
LOG_RETENTION = timedelta(days=30)
RETRYABLE_4XX = frozenset({408, 429})
EXCERPT_CHARS = 1000
MAX_ENDPOINTS = 20
SECRET_BYTES = 24
# A signing key pasted for a Delighted-format endpoint (the receiver's old API key, say).
SIGNING_KEY_MIN, SIGNING_KEY_MAX = 16, 200
DELIGHTED_SIGNATURE_HEADER = "X-Delighted-Webhook-Signature"


# --- Signing (Standard Webhooks) ---------------------------------------------------------------


def webhook_secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_signature(*, secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(*, secret: str, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_signature(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }


def delighted_signature(*, secret: str, body: bytes) -> str:
    """``sha256=<lowercase hex HMAC-SHA256 of the raw body>``, keyed with the secret's text."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delighted_event_id(msg_id: str) -> str:
    return hashlib.sha256(msg_id.encode()).hexdigest()


def _body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


# --- Endpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def _clean_endpoint(url: str, event_types: Sequence[str], payload_format: str) -> list[str]:
    try:
        url_check(url)
    except UnsafeURL as err:
        raise ValidationError({"url": str(err)}) from err
    if payload_format not in PayloadFormat.values:
        raise ValidationError({"payload_format": _("Choose a payload format.")})
    unknown = set(event_types) - set(WebhookEventType.values)
    if unknown or not event_types:
        raise ValidationError({"event_types": _("Choose at least one event.")})
    if payload_format == PayloadFormat.DELIGHTED and set(event_types) - set(DELIGHTED_EVENT_TYPES):
        raise ValidationError(
            {
                "event_types": _(
                    "Delighted's format has only responses created or changed and unsubscribes."
                )
            }
        )
    return [e for e in WebhookEventType.values if e in set(event_types)]


def _clean_signing_key(signing_key: str, payload_format: str) -> str:
    key = signing_key.strip()
    if not key:
        return ""
    if payload_format != PayloadFormat.DELIGHTED:
        raise ValidationError(
            {"signing_key": _("Only a Delighted-format endpoint signs with a key of yours.")}
        )
    if not SIGNING_KEY_MIN <= len(key) <= SIGNING_KEY_MAX:
        raise ValidationError(
            {
                "signing_key": _("The signing key has %(min)d to %(max)d characters.")
                % {"min": SIGNING_KEY_MIN, "max": SIGNING_KEY_MAX}
            }
        )
    return key


# What an admin sets on an endpoint, as the audit log shows it (the secret only as changed).
_AUDITED_FIELDS = ("url", "description", "event_types", "payload_format", "enabled")


def webhook_endpoint_create(
    *,
    company: Company,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    payload_format: str = PayloadFormat.STANDARD,
    signing_key: str = "",
) -> IssuedEndpoint:
    """A new endpoint and its secret (shown once): generated, or for a Delighted-format
    endpoint the ``signing_key`` the admin pasted (what their receiver verifies with)."""
    payload_format = payload_format or PayloadFormat.STANDARD
    events = _clean_endpoint(url, event_types, payload_format)
    secret = _clean_signing_key(signing_key, payload_format) or webhook_secret_new()
    if WebhookEndpoint.objects.for_company(company).count() >= MAX_ENDPOINTS:
        raise ValidationError(_("At most %(n)d endpoints.") % {"n": MAX_ENDPOINTS})
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            company=company,
            url=url.strip(),
            description=description.strip(),
            event_types=events,
            payload_format=payload_format,
            secret_encrypted=secret_encrypt(secret),
        )
        audit_record(
            company=company,
            action=AuditAction.WEBHOOK_CREATED,
            target=endpoint,
            changes=changes_between({}, snapshot(endpoint, _AUDITED_FIELDS)),
        )
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


def _signs_standard(endpoint: WebhookEndpoint) -> bool:
    """Whether the endpoint's secret is one of ours (a pasted key cannot sign the Standard
    Webhooks way, whose secret is base64 bytes)."""
    try:
        secret = secret_decrypt(endpoint.secret_encrypted)
        base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (CredentialUnreadable, ValueError):
        return False
    return secret.startswith("whsec_")


def webhook_endpoint_update(
    *,
    company: Company,
    endpoint: WebhookEndpoint,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    payload_format: str | None = None,
    signing_key: str = "",
) -> WebhookEndpoint:
    """Save the endpoint's settings; a ``signing_key`` (Delighted format) replaces its
    secret. The secret is kept across a change of format: it signs either way, except a
    pasted key, which cannot sign Standard Webhooks (rotate the secret first)."""
    assert endpoint.company_id == company.pk
    before = snapshot(endpoint, [*_AUDITED_FIELDS, "secret_encrypted"])
    payload_format = payload_format or endpoint.payload_format
    endpoint.event_types = _clean_endpoint(url, event_types, payload_format)
    key = _clean_signing_key(signing_key, payload_format)
    if (
        payload_format == PayloadFormat.STANDARD
        and endpoint.payload_format != PayloadFormat.STANDARD
        and not _signs_standard(endpoint)
    ):
        raise ValidationError(
            {
                "payload_format": _(
                    "This endpoint signs with a key you pasted, which Standard Webhooks "
                    "cannot use: rotate the secret first."
                )
            }
        )
    endpoint.url, endpoint.description = url.strip(), description.strip()
    endpoint.payload_format = payload_format
    endpoint.updated_at = timezone.now()
    fields = ["url", "event_types", "description", "payload_format", "updated_at"]
    if key:
        endpoint.secret_encrypted = secret_encrypt(key)
        fields.append("secret_encrypted")
    with transaction.atomic():
        endpoint.save(update_fields=fields)
        changes = changes_between(
            before,
            snapshot(endpoint, [*_AUDITED_FIELDS, "secret_encrypted"]),
            secret=["secret_encrypted"],
        )
        if changes:
            audit_record(
                company=company,
                action=AuditAction.WEBHOOK_UPDATED,
                target=endpoint,
                changes=changes,
            )
    return endpoint


def webhook_endpoint_rotate_secret(*, company: Company, endpoint: WebhookEndpoint) -> str:
    """A new secret (returned: shown once); messages sent from now on are signed with it."""
    secret = webhook_secret_new()
    with transaction.atomic():
        WebhookEndpoint.objects.for_company(company).filter(pk=endpoint.pk).update(
            secret_encrypted=secret_encrypt(secret), updated_at=timezone.now()
        )
        audit_record(company=company, action=AuditAction.WEBHOOK_SECRET_ROTATED, target=endpoint)
    return secret


def webhook_endpoint_set_enabled(
    *, company: Company, endpoint: WebhookEndpoint, enabled: bool
) -> None:
    """An admin's switch; enabling starts the failure clock again."""
    now = timezone.now()
    rows = WebhookEndpoint.objects.for_company(company).filter(pk=endpoint.pk)
    with transaction.atomic():
        if enabled:
            changed = rows.filter(enabled=False).exists()
            rows.update(
                enabled=True,
                disabled_reason=DisabledReason.NONE,
                disabled_at=None,
                failing_since=None,
                updated_at=now,
            )
        else:
            changed = bool(
                rows.filter(enabled=True).update(
                    enabled=False,
                    disabled_reason=DisabledReason.MANUAL,
                    disabled_at=now,
                    updated_at=now,
                )
            )
        if changed:
            audit_record(
                company=company,
                action=AuditAction.WEBHOOK_UPDATED,
                target=endpoint,
                changes={"enabled": [not enabled, enabled]},
            )


def webhook_endpoint_delete(*, company: Company, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        if WebhookEndpoint.objects.for_company(company).filter(pk=endpoint.pk).delete()[0]:
            audit_record(company=company, action=AuditAction.WEBHOOK_DELETED, target=endpoint)


# --- Reads -------------------------------------------------------------------------------------


def webhook_endpoints_for(*, company: Company) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.for_company(company).order_by("created_at", "id"))


def webhook_endpoint_get(*, company: Company, public_id: str) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.for_company(company).filter(public_id=public_id).first()


def webhook_messages_for(
    *, company: Company, endpoint: WebhookEndpoint, limit: int = 50
) -> list[WebhookMessage]:
    """The endpoint's latest messages, newest first, with their attempts (the delivery log)."""
    messages = list(
        WebhookMessage.objects.for_company(company)
        .filter(endpoint=endpoint)
        .order_by("-created_at", "-id")[:limit]
    )
    attempts: dict[int, list[WebhookAttempt]] = {}
    for attempt in (
        WebhookAttempt.objects.for_company(company)
        .filter(message_id__in=[m.pk for m in messages])
        .order_by("number")
    ):
        attempts.setdefault(attempt.message_id, []).append(attempt)
    for message in messages:
        message.log = attempts.get(message.pk, [])  # type: ignore[attr-defined]
    return messages


# --- Emitting ----------------------------------------------------------------------------------


def _envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The body every event has; through JSON once, so that dates are ISO strings."""
    envelope = {"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}
    result: dict[str, Any] = json.loads(_body(envelope))
    return result


def _delighted_envelope(msg_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    envelope = {
        "event_type": event_type,
        "event_id": delighted_event_id(msg_id),
        "event_data": data,
    }
    result: dict[str, Any] = json.loads(_body(envelope))
    return result


# (company, our event type, our event's data) -> Delighted's ``event_data``, or None to send
# nothing (the object is gone). Registered by the app that knows the objects (delighted_compat).
DelightedBuilder = Callable[["Company", str, dict[str, Any]], "dict[str, Any] | None"]
_delighted_builders: list[DelightedBuilder] = []


def webhook_format_register(builder: DelightedBuilder) -> None:
    """Let ``builder`` make the Delighted-format bodies (an AppConfig.ready() calls this)."""
    if builder not in _delighted_builders:
        _delighted_builders.append(builder)


def _delighted_data(
    company: Company, event_type: str, data: dict[str, Any]
) -> dict[str, Any] | None:
    if not _delighted_builders:
        logger.warning("no Delighted webhook builder registered: %s not sent", event_type)
        return None
    return _delighted_builders[-1](company, event_type, data)


def _queue(messages: Sequence[WebhookMessage]) -> None:
    for message in messages:
        wake(DELIVER_TASK, message.company_id, message.pk, 0)


def _subscribers(company: Company, event_type: str) -> list[WebhookEndpoint]:
    # Filtered here rather than with a JSON lookup: the embedded SQLite has no "contains".
    return [
        e
        for e in WebhookEndpoint.objects.for_company(company).filter(enabled=True).order_by("pk")
        if event_type in (e.event_types or [])
    ]


def webhook_has_subscribers(*, company: Company, event_type: str) -> bool:
    """Whether an event would go anywhere (callers skip building its payload otherwise)."""
    return bool(_subscribers(company, event_type))


def webhook_event_emit(
    *, company: Company, event_type: str, data: dict[str, Any]
) -> list[WebhookMessage]:
    """Queue ``event_type`` with ``data`` for every enabled endpoint of ``company`` that
    subscribed to it; the messages written. Part of the caller's transaction if there is
    one (the sends start after it commits, and not at all if it rolls back)."""
    if event_type not in WebhookEventType.values:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = _subscribers(company, event_type)
    if not endpoints:
        return []
    payload = _envelope(event_type, data)
    delighted: dict[str, Any] | None = None
    if event_type in DELIGHTED_EVENT_TYPES and any(
        e.payload_format == PayloadFormat.DELIGHTED for e in endpoints
    ):
        delighted = _delighted_data(company, event_type, data)
    now = timezone.now()
    rows = []
    for endpoint in endpoints:
        msg_id = new_message_id()
        if endpoint.payload_format == PayloadFormat.DELIGHTED:
            if delighted is None:
                continue
            body = _delighted_envelope(msg_id, DELIGHTED_EVENT_TYPES[event_type], delighted)
        else:
            body = payload
        rows.append(
            WebhookMessage(
                company=company,
                public_id=msg_id,
                kind=MessageKind.WEBHOOK,
                endpoint=endpoint,
                event_type=event_type,
                payload=body,
                next_attempt_at=now + ENQUEUE_LEASE,
                created_at=now,
            )
        )
    messages = WebhookMessage.objects.bulk_create(rows)
    _queue(messages)
    return messages


def webhook_test_send(*, company: Company, endpoint: WebhookEndpoint) -> WebhookMessage:
    """A ``ping`` event to this one endpoint (also when it is disabled: to check a fix)."""
    assert endpoint.company_id == company.pk
    now = timezone.now()
    msg_id = new_message_id()
    data = {"endpoint": endpoint.public_id, "message": "Test event from nps_saas"}
    if endpoint.payload_format == PayloadFormat.DELIGHTED:
        payload = _delighted_envelope(msg_id, PING_EVENT, data)
    else:
        payload = _envelope(PING_EVENT, data)
    message = WebhookMessage.objects.create(
        company=company,
        public_id=msg_id,
        kind=MessageKind.WEBHOOK,
        endpoint=endpoint,
        event_type=PING_EVENT,
        payload=payload,
        next_attempt_at=now + ENQUEUE_LEASE,
        created_at=now,
    )
    _queue([message])
    return message


def slack_message_enqueue(
    *, company: Company, url: str, body: dict[str, Any], event_type: str
) -> WebhookMessage:
    """Queue one Slack post (an incoming-webhook ``body``). Written in the caller's
    transaction: exactly one per caller's ledger row when the caller inserts both together."""
    now = timezone.now()
    message = WebhookMessage.objects.create(
        company=company,
        kind=MessageKind.SLACK,
        url=url,
        event_type=event_type,
        payload=body,
        next_attempt_at=now + ENQUEUE_LEASE,
        created_at=now,
    )
    _queue([message])
    return message


# --- Delivering --------------------------------------------------------------------------------


def _retryable(result: HttpResult) -> bool:
    if result.error.startswith("refused"):
        return False
    if result.status is None:
        return True
    if 400 <= result.status < 500:
        return result.status in RETRYABLE_4XX
    return True  # 3xx (refused redirect), 5xx


def _describe(result: HttpResult) -> str:
    if result.status is None:
        return result.error
    if 300 <= result.status < 400:
        return f"HTTP {result.status} (redirects are not followed)"
    return f"HTTP {result.status}"


def _request(message: WebhookMessage, now: datetime) -> tuple[str, str, dict[str, str]] | str:
    """(url, body, headers) of this attempt, or why it cannot be made."""
    body = _body(message.payload)
    if message.kind == MessageKind.SLACK:
        return message.url, body, {}
    endpoint = message.endpoint
    if endpoint is None:
        return "endpoint deleted"
    if not endpoint.enabled and message.event_type != PING_EVENT:
        return "endpoint disabled"
    try:
        secret = secret_decrypt(endpoint.secret_encrypted)
    except CredentialUnreadable:
        return "the signing secret cannot be read: rotate it"
    headers = _signed(endpoint, message, secret=secret, body=body, now=now)
    if isinstance(headers, str):
        return headers
    return endpoint.url, body, headers


def _signed(
    endpoint: WebhookEndpoint, message: WebhookMessage, *, secret: str, body: str, now: datetime
) -> dict[str, str] | str:
    """The signature headers of the endpoint's format, or why the message cannot be signed."""
    delighted_body = "event_type" in message.payload
    if endpoint.payload_format == PayloadFormat.DELIGHTED:
        if not delighted_body:
            return "queued in the Standard Webhooks format before the endpoint changed format"
        return {DELIGHTED_SIGNATURE_HEADER: delighted_signature(secret=secret, body=body.encode())}
    if delighted_body:
        return "queued in Delighted's format before the endpoint changed format"
    try:
        return signed_headers(secret=secret, msg_id=message.public_id, body=body, now=now)
    except ValueError:
        return "the signing secret is not a Standard Webhooks secret: rotate it"


def webhook_message_deliver(*, company: Company, message_id: int, attempt: int) -> str | None:
    """Make attempt number ``attempt + 1`` of a message if this worker claims it; the
    message's status afterwards, or None if it was not ours to send (see the docstring)."""
    messages = WebhookMessage.objects.for_company(company)
    claimed = messages.filter(pk=message_id, status=MessageStatus.PENDING, attempts=attempt).update(
        status=MessageStatus.SENDING, attempts=attempt + 1, claimed_at=timezone.now()
    )
    if not claimed:
        return None
    message = messages.select_related("endpoint").get(pk=message_id)
    now = timezone.now()
    request = _request(message, now)
    if isinstance(request, str):
        messages.filter(pk=message.pk).update(
            status=MessageStatus.FAILED, last_error=request, finished_at=now
        )
        return MessageStatus.FAILED
    url, body, headers = request
    result = post_json(url, body=body.encode(), headers=headers)
    done = timezone.now()
    WebhookAttempt.objects.create(
        company=company,
        message=message,
        number=attempt + 1,
        attempted_at=now,
        status_code=result.status,
        error=result.error[:500],
        latency_ms=result.latency_ms,
        response_excerpt=result.body[:EXCERPT_CHARS].decode("utf-8", "replace"),
        succeeded=result.ok,
    )
    if result.ok:
        status = MessageStatus.DELIVERED
        messages.filter(pk=message.pk).update(
            status=status, last_error="", finished_at=done, next_attempt_at=None
        )
    elif _retryable(result) and attempt + 1 < MAX_ATTEMPTS:
        status = MessageStatus.PENDING
        messages.filter(pk=message.pk).update(
            status=status,
            last_error=_describe(result)[:500],
            next_attempt_at=done + RETRY_DELAYS[attempt],
        )
    else:
        status = MessageStatus.FAILED
        messages.filter(pk=message.pk).update(
            status=status,
            last_error=_describe(result)[:500],
            finished_at=done,
            next_attempt_at=None,
        )
    if message.endpoint is not None:
        _endpoint_health(company, message, result, final=status == MessageStatus.FAILED)
    return status


def _endpoint_health(
    company: Company, message: WebhookMessage, result: HttpResult, *, final: bool
) -> None:
    endpoint = message.endpoint
    assert endpoint is not None
    rows = WebhookEndpoint.objects.for_company(company).filter(pk=endpoint.pk)
    now = timezone.now()
    if result.ok:
        rows.filter(failing_since__isnull=False).update(failing_since=None)
        return
    rows.filter(failing_since__isnull=True).update(failing_since=now)
    if result.status == 410:
        _endpoint_disable(company, endpoint, DisabledReason.GONE)
        return
    if not final or message.event_type == PING_EVENT:
        return
    failing_since = rows.values_list("failing_since", flat=True).first()
    if failing_since is not None and failing_since <= now - DISABLE_AFTER:
        _endpoint_disable(company, endpoint, DisabledReason.FAILING)


def _endpoint_disable(company: Company, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Disable an enabled endpoint and email the admins; False if it was disabled already."""
    now = timezone.now()
    claimed = (
        WebhookEndpoint.objects.for_company(company)
        .filter(pk=endpoint.pk, enabled=True)
        .update(enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now)
    )
    if not claimed:
        return False
    endpoint.refresh_from_db()
    try:
        _disabled_email(company=company, endpoint=endpoint)
    except TransientSendError as err:
        logger.warning("email about disabled webhook %s not sent: %s", endpoint.public_id, err)
    return True


def _disabled_email(*, company: Company, endpoint: WebhookEndpoint) -> None:
    from companies.models import Membership, Role

    admins = (
        Membership.objects.for_company(company)
        .filter(role__in=[Role.OWNER, Role.ADMIN])
        .select_related("user")
        .order_by("id")
    )
    url = settings.SITE_URL + reverse(
        "webhooks:detail", kwargs={"company_slug": company.slug, "endpoint_id": endpoint.public_id}
    )
    context = {"company": company, "endpoint": endpoint, "url": url}
    base = "notifications/webhooks/email/disabled"
    emails = []
    for membership in admins:
        with translation.override(membership.user.language or settings.LANGUAGE_CODE):
            rendered = render_email(base, context)
            emails.append(
                OutgoingEmail(
                    to=membership.user.email,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    metadata={"webhook_endpoint": endpoint.public_id},
                    from_name=company.sender_name or company.name,
                )
            )
    if emails:
        email_send(company=company, emails=emails)


# --- The sweep -----------------------------------------------------------------------------------


def webhooks_deliver_due(*, limit: int = 500) -> int:
    """The beat sweep: recover rows a dead worker left ``sending``, drop log entries older
    than LOG_RETENTION, and enqueue due retries (each leased for ENQUEUE_LEASE, so the next
    sweeps do not enqueue it again). Returns how many messages were enqueued."""
    now = timezone.now()
    all_rows = WebhookMessage.objects.unscoped(reason="the webhook sweep runs across companies")
    stale = list(
        all_rows.filter(status=MessageStatus.SENDING, claimed_at__lt=now - STALE_AFTER)
        .values_list("pk", "company_id", "kind")
        .order_by("pk")[:limit]
    )
    for pk, company_id, kind in stale:
        rows = WebhookMessage.objects.filter(
            company_id=company_id, pk=pk, status=MessageStatus.SENDING
        )
        if kind == MessageKind.SLACK:
            rows.update(
                status=MessageStatus.FAILED,
                last_error="the sending worker stopped; not posted again to avoid a duplicate",
                finished_at=now,
            )
        else:
            rows.update(status=MessageStatus.PENDING, next_attempt_at=now)
    expired = list(
        all_rows.filter(
            status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED],
            finished_at__lt=now - LOG_RETENTION,
        ).values_list("pk", flat=True)[:limit]
    )
    if expired:
        all_rows.filter(pk__in=expired).delete()
    due = list(
        all_rows.filter(status=MessageStatus.PENDING, next_attempt_at__lte=now)
        .values_list("pk", "company_id", "attempts")
        .order_by("next_attempt_at", "pk")[:limit]
    )
    enqueued = 0
    for pk, company_id, attempts in due:
        leased = WebhookMessage.objects.filter(
            company_id=company_id,
            pk=pk,
            status=MessageStatus.PENDING,
            attempts=attempts,
            next_attempt_at__lte=now,
        ).update(next_attempt_at=now + ENQUEUE_LEASE)
        if leased:
            wake(DELIVER_TASK, company_id, pk, attempts)
            enqueued += 1
    return enqueued
