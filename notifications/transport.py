"""What every channel of the post office shares: the errors, the ledger writes around a
provider call, and the registry of channels.

A channel module (``notifications.email``, ``notifications.sms``) has one entry point of the
same shape, ``<channel>_send(*, company, messages) -> list[Delivery]`` (the rows in the
order of ``messages``), registered here under the channels it serves, and keeps to one
contract:

- every message has a Delivery row, written and committed before any provider call
  (``notifications.ledger``);
- a row is moved from ``queued`` to ``sending`` right before its call by a conditional
  UPDATE (``calls_begin``), and only the rows this call moved are handed to the provider: two
  workers holding the same row never both send it; after the call each row gets its outcome
  (``outcomes_save``);
- a failure that certainly left nothing at the provider (connection refused, a 5xx or 429
  answer, the rate limiter unavailable) puts every row not yet decided back to ``queued``
  (``requeue``) and raises ``TransientSendError`` with all the rows: the caller retries
  later with the same ``delivery_id``s, and a row that is no longer ``queued`` is never sent
  again;
- a failure after the request may have reached the provider (a read timeout, a connection
  dropped mid-answer) is an unknown outcome: those rows stay ``sending``, stamped with the
  call's start and its ``call_ref`` (carried in the message's metadata), and are never sent
  again blindly. ``deliveries_resolve`` settles them later: the channel's ``lookup`` asks
  the provider whether it took them (Postmark: its message search by our metadata); found
  is sent, absent is ``queued`` again (sent by the next attempt), and what no provider can
  tell becomes ``unknown`` for a person to decide.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from urllib3.exceptions import NewConnectionError

from companies.tenancy import tenant_update_rows
from companies.wake import INFRASTRUCTURE_ERRORS
from notifications.ledger import announce
from notifications.models import Channel, Delivery, DeliveryStatus

if TYPE_CHECKING:
    from companies.models import Company

logger = logging.getLogger(__name__)

# HTTP statuses worth retrying: rate limited, server trouble, and credentials being fixed.
TRANSIENT_HTTP_STATUS = frozenset({401, 403, 408, 409, 425, 429})
# The channels that go through Twilio (SMS and WhatsApp share a post office).
SMS_CHANNELS: frozenset[str] = frozenset({Channel.SMS, Channel.WHATSAPP})


class TransientSendError(Exception):
    """Retry later; ``deliveries`` are the rows of the call, undecided ones back to queued."""

    def __init__(self, message: str, *, deliveries: list[Delivery], retry_after: float = 0):
        super().__init__(message)
        self.deliveries = deliveries
        self.retry_after = retry_after


# What a task on a sending path retries with backoff: the post office's transient errors and
# infrastructure that is down for a while. Anything else is a bug or a permanent refusal.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (TransientSendError, *INFRASTRUCTURE_ERRORS)


def calls_begin(company: Company, rows: Sequence[Delivery]) -> tuple[list[Delivery], str]:
    """Claim ``rows`` for one provider call: ``queued`` → ``sending`` (one attempt more, the
    call's start and reference stamped). Returns the rows this call won, in order, and the
    call's reference; a row another worker took (or that is no longer queued) is left out
    and must not be sent by this call."""
    ref = secrets.token_hex(8)
    now = timezone.now()
    mine = Delivery.objects.for_company(company)
    with transaction.atomic():
        # SKIP LOCKED: a row another worker is claiming right now is that worker's.
        won = set(
            mine.filter(pk__in=[row.pk for row in rows], status=DeliveryStatus.QUEUED)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        mine.filter(pk__in=won).update(
            status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, updated_at=now, call_ref=ref
        )
    claimed = []
    for row in rows:
        if row.pk in won:
            row.status, row.updated_at, row.call_ref = DeliveryStatus.SENDING, now, ref
            row.attempts += 1
            claimed.append(row)
    return claimed, ref


_OUTCOME_FIELDS = ["status", "error", "sent_at", "provider_message_id", "updated_at"]


def outcomes_save(company: Company, rows: Sequence[Delivery]) -> None:
    """Write the outcome fields of ``rows`` as they are in memory and announce each.

    ``bulk_update`` builds one CASE per field and row, which cost most of a send: on
    PostgreSQL ``tenant_update_rows`` writes them in one statement per group of alike rows.
    Other databases keep ``bulk_update``.
    """
    if connection.vendor != "postgresql":
        Delivery.objects.for_company(company).bulk_update(list(rows), _OUTCOME_FIELDS)
    else:
        tenant_update_rows(
            Delivery,
            company=company,
            rows=rows,
            shared=["status", "error", "sent_at", "updated_at"],
            per_row="provider_message_id",
        )
    for row in rows:
        announce(row)


def outcome_set(
    row: Delivery, *, status: str, error: str = "", message_id: str = "", now: Any = None
) -> None:
    """Set one row's outcome in memory (``outcomes_save`` writes it)."""
    now = now or timezone.now()
    row.status, row.error, row.updated_at = status, error[:2000], now
    if status == DeliveryStatus.SENT:
        row.sent_at = now
        if message_id:
            row.provider_message_id = message_id[:255]


def requeue(company: Company, rows: Sequence[Delivery]) -> None:
    """Give back rows this call claimed and certainly did not send (``calls_begin``'s rows,
    still in that call): queued again, so a retry (``delivery_id``) sends them."""
    for call_ref in {row.call_ref for row in rows}:
        Delivery.objects.for_company(company).filter(
            pk__in=[row.pk for row in rows if row.call_ref == call_ref],
            status=DeliveryStatus.SENDING,
            call_ref=call_ref,
        ).update(status=DeliveryStatus.QUEUED)
    for row in rows:
        row.status = DeliveryStatus.QUEUED


# --- Unknown outcomes ---------------------------------------------------------------------------


def request_may_have_arrived(err: BaseException) -> bool:
    """Whether a network error may have come after the provider received the request: a
    read timeout or a connection dropped mid-answer may; a refused or unresolvable
    connection, a connect timeout or a failed TLS handshake did not. ``err`` may wrap the
    requests error (anymail raises its own, caused by it)."""
    if isinstance(err, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(err, requests.Timeout):
        return True
    if isinstance(err, requests.ConnectionError):
        return not any(isinstance(cause, NewConnectionError) for cause in _causes(err))
    return False


def _causes(err: BaseException) -> list[BaseException]:
    """The exceptions behind ``err``: its cause chain and urllib3's wrapped reasons."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo and len(seen) < 20:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
    return seen


@dataclass(frozen=True)
class Found:
    """What a provider's lookup says of one row: ``sent`` (with its message id) or
    ``absent`` (the provider never took it)."""

    status: str
    message_id: str = ""


# A lookup: the rows of one company and provider, all ``sending`` → {row pk: Found}; a row
# left out is one the provider cannot tell about. Raises TransientSendError when the
# provider cannot be asked right now.
Lookup = Callable[["Company", Sequence[Delivery]], dict[int, Found]]


def _lookups() -> dict[str, Lookup]:
    from notifications.email import postmark_lookup

    return {"postmark": postmark_lookup}


def call_deadline() -> timedelta:
    """After this, a provider call that started can no longer be running (connect and read
    timeouts, with a margin): a delivery still ``sending`` has an unknown outcome."""
    longest = max(settings.EMAIL_REQUEST_TIMEOUT, settings.SMS_REQUEST_TIMEOUT)
    return timedelta(seconds=2 * longest + 15)


RESOLVE_BATCH_SIZE = 500


def deliveries_resolve_due(*, now: datetime | None = None) -> int:
    """The beat's job across companies: every delivery left ``sending`` past the call
    deadline (an unknown outcome, or a worker that died mid-call) is settled by
    ``deliveries_resolve``; the number settled. Invitations also settle their own rows in
    the surveys' stale sweep; a row settled twice is settled once (the writes are
    conditional)."""
    now = now or timezone.now()
    stuck = list(
        Delivery.objects.unscoped(reason="the ledger sweep serves every company")
        .filter(status=DeliveryStatus.SENDING, updated_at__lt=now - call_deadline())
        .select_related("company")
        .order_by("updated_at")[:RESOLVE_BATCH_SIZE]
    )
    by_company: dict[int, list[Delivery]] = {}
    for row in stuck:
        by_company.setdefault(row.company_id, []).append(row)
    settled = 0
    for rows in by_company.values():
        try:
            settled += len(deliveries_resolve(company=rows[0].company, rows=rows))
        except TransientSendError as err:  # the provider cannot be asked now: next run
            logger.warning("unknown outcomes not looked up yet: %s", err)
    return settled


def deliveries_resolve(*, company: Company, rows: Sequence[Delivery]) -> dict[int, str]:
    """Settle rows left ``sending`` by a call whose outcome is unknown (or whose worker
    died mid-call); the new status of each row settled, by pk.

    Found at the provider: ``sent``; absent: ``queued`` again, so the next attempt sends it;
    a provider without a lookup (or one that does not know the row): ``unknown``, never sent
    again by itself. Each write is conditional on the row still being in the same call, so a
    worker that finishes late keeps its own outcome.
    """
    lookups = _lookups()
    settled: dict[int, str] = {}
    by_provider: dict[str, list[Delivery]] = {}
    for row in rows:
        by_provider.setdefault(row.provider, []).append(row)
    for provider, group in by_provider.items():
        lookup = lookups.get(provider)
        found = lookup(company, group) if lookup is not None else {}
        for row in group:
            answer = found.get(row.pk)
            still = Delivery.objects.for_company(company).filter(
                pk=row.pk, status=DeliveryStatus.SENDING, call_ref=row.call_ref
            )
            now = timezone.now()
            if answer is not None and answer.status == DeliveryStatus.SENT:
                outcome_set(row, status=DeliveryStatus.SENT, message_id=answer.message_id, now=now)
                if still.update(
                    status=row.status,
                    error="",
                    sent_at=now,
                    provider_message_id=row.provider_message_id,
                    updated_at=now,
                ):
                    announce(row)
                    settled[row.pk] = row.status
            elif answer is not None:
                if still.update(status=DeliveryStatus.QUEUED, updated_at=now):
                    row.status = DeliveryStatus.QUEUED
                    settled[row.pk] = row.status
            else:
                error = "the provider may have taken it and cannot be asked: not sent again"
                outcome_set(row, status=DeliveryStatus.UNKNOWN, error=error, now=now)
                if still.update(status=row.status, error=row.error, updated_at=now):
                    announce(row)
                    settled[row.pk] = row.status
    return settled
