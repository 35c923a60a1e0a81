"""Writes for notifications: the development outbox and suppressions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import phonenumbers
from django.db import transaction

from notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    OutboxChannel,
    OutboxMessage,
    Suppression,
    SuppressionReason,
)
from notifications.signals import address_suppressed

if TYPE_CHECKING:
    from companies.models import Company


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


# --- Suppressions -----------------------------------------------------------------------------


def normalize_address(channel: str, address: str) -> str:
    """The form an address is stored and compared in: lower-case email, E.164 phone number.

    Email: trimmed and lower-cased as a whole (local parts are case-insensitive at every
    provider we send through, and a suppression must not be dodged by "Ann@" vs "ann@").
    Phone: parsed with ``phonenumbers`` (a leading ``+`` is required, there is no default
    region) and formatted as E.164; an unparsable number is returned trimmed, so that a
    suppression from a provider is still recorded rather than lost.
    """
    address = address.strip()
    if channel == Channel.EMAIL:
        return address.lower()
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return address
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# An erased person's suppression keeps only this hash of the address (privacy.services):
# sends keep refusing it, the address itself is gone.
SUPPRESSION_HASH_PREFIX = "sha256:"


def suppression_address_hash(*, company_id: int, channel: str, normalized: str) -> str:
    """The stored form of an erased person's suppressed address.

    Salted with the company and the channel and unkeyed on purpose: a keyed hash would stop
    matching (and the person be messaged again) when a server secret is rotated. The hash
    can confirm a guessed address, never give one back.
    """
    digest = hashlib.sha256(f"{company_id}:{channel}:{normalized}".encode()).hexdigest()
    return SUPPRESSION_HASH_PREFIX + digest


def suppression_add(
    *, company: Company, channel: str, address: str, reason: str, detail: str = ""
) -> Suppression:
    """Never message ``address`` on ``channel`` for ``company`` again. Idempotent.

    An existing suppression is kept as it is (the first reason wins: a bounce stays a bounce
    when the same address later unsubscribes too) and no signal is sent for it.
    ``address_suppressed`` goes out, after commit, only when a row was created.
    """
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    if reason not in SuppressionReason.values:
        raise ValueError(f"unknown suppression reason {reason!r}")
    normalized = normalize_address(channel, address)
    # get_or_create retries the get after an IntegrityError, so two concurrent calls (two
    # webhooks for the same bounce) leave one row and both return it.
    suppression, created = Suppression.objects.for_company(company).get_or_create(
        company=company,
        channel=channel,
        address=normalized,
        defaults={"reason": reason, "detail": detail[:255]},
    )
    if created:
        company_id = company.pk
        transaction.on_commit(
            lambda: address_suppressed.send(
                sender=Suppression,
                company_id=company_id,
                channel=channel,
                address=normalized,
                reason=reason,
            )
        )
    return suppression


def suppression_remove(*, company: Company, channel: str, address: str) -> None:
    """Allow messages to the address again (a company admin's decision). No-op if absent."""
    Suppression.objects.for_company(company).filter(
        channel=channel, address=normalize_address(channel, address)
    ).delete()


def suppression_lift_stop(*, company: Company, channel: str, address: str) -> bool:
    """The number texted START: lift its STOP for the company (other suppressions, e.g. one
    an admin added, stay). Returns whether one was lifted."""
    deleted, _by_model = (
        Suppression.objects.for_company(company)
        .filter(
            channel=channel,
            address=normalize_address(channel, address),
            reason__in=[SuppressionReason.STOPPED, SuppressionReason.UNSUBSCRIBED],
        )
        .delete()
    )
    return bool(deleted)


def address_forget(*, company: Company, channel: str, address: str) -> None:
    """Erase what the post office keeps about an address (a person's data deleted): its
    suppression and its finished ledger rows. Rows in flight stay until their send settles."""
    normalized = normalize_address(channel, address)
    Suppression.objects.for_company(company).filter(channel=channel, address=normalized).delete()
    Delivery.objects.for_company(company).filter(channel=channel, to=normalized).exclude(
        status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING]
    ).delete()
