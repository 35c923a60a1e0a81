"""Sending email: the delivery ledger, suppressions, batching and the shared rate limit.

The interface::

    email_send(*, company: Company, emails: Sequence[OutgoingEmail]) -> list[Delivery]

    OutgoingEmail(to, subject, text, html, headers={}, reply_to=None, from_name="",
                  metadata={}, merge={}, delivery_id=None)
    merge_field(key) -> "[[nps:key]]"

**Per-recipient values** (answer links, unsubscribe URL): render the email once with
``merge_field("answer_url")`` etc. where the values go (subject, text, HTML, header values),
and give each recipient's values in ``OutgoingEmail.merge`` (``{"answer_url": "https://…"}``).
Emails with the same subject/text/html/from_name/reply_to then go to the provider as ONE
anymail batch message (``to=[…]``, ``merge_data={addr: merge}``, ``merge_headers``,
``merge_metadata``), up to the provider's per-call cap, the placeholders translated into the
provider's merge syntax. Emails without placeholders simply pass their final content and an
empty ``merge``; ``email_send(company=c, emails=[OutgoingEmail(...)])`` sends a one-off.

Batching with inline (non-template) content, per provider (anymail 15, see PROVIDERS):

* Mailgun: ``%recipient.key%`` (recipient-variables), 1,000 recipients per call.
* Mailjet: ``[[var:key]]`` in the bodies (not the subject), 50 messages per call.
* SendGrid: legacy substitutions of our own ``[[nps:key]]`` (``merge_field_format``),
  1,000 personalizations per call.
* Postmark: only its bulk API merges into inline content (``{{key}}``; enable with
  ``POSTMARK_USE_BULK_API``), 500 per call here. Its transactional ``/email/batch`` (500)
  cannot take per-recipient bodies through anymail, so without the bulk API emails with
  values are rendered here and sent one per call; identical emails still batch.
* Brevo: batch sends (``messageVersions``, 1,000) carry no inline merge fields: identical
  emails batch, personalised ones are rendered here and sent one per call.
* Amazon SES (merges only into stored templates) and smtp: one message per call.
* The development outbox: ``[[nps:key]]`` substituted per recipient by
  ``notifications.backends.OutboxEmailBackend``, 500 per call.

A value is only handed to the provider's merge if it is inert in HTML (no ``<>&"'``): some
providers escape what they merge and some do not, so such values (a name like "O'Brien")
make that one email rendered here (HTML-escaped in the HTML part) and sent on its own.

**Ledger and retries.** Every email gets a Delivery row (status ``queued``; ``suppressed``
for a suppressed address, ``failed`` for an invalid one) before any provider call. A batch is
marked ``sending`` (attempts + 1) right before its call, then each row ``sent`` (with the
provider's message id) or ``failed`` (with the reason: the provider rejected the recipient,
or refused the whole call with a 4xx). Network errors, 429, 401/403 and 5xx, and a rate-limit
wait longer than EMAIL_RATE_TIMEOUT raise ``TransientSendError`` after every row not yet
decided is back to ``queued``; ``err.deliveries`` lists all the rows in the order of
``emails``. To retry, send the same emails again with ``delivery_id`` set to those rows' ids:
a row is reused only while it is ``queued``; a row already ``sent``/``failed``/… (or left
``sending`` by a killed worker: its outcome is unknown) is returned as it is and never sent
again, so a redelivered task cannot send twice.

Call it outside ``transaction.atomic`` so that the ledger rows are committed before the
provider is called. Every status change also sends ``message_status_changed`` (after commit);
keep receivers cheap, and prefer the returned rows for bulk updates.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, Any

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.utils import timezone
from redis.exceptions import RedisError

from companies.mail import header_safe
from notifications.ledger import LedgerEntry, ledger_write
from notifications.models import Channel, Delivery, DeliveryStatus
from notifications.ratelimit import RateLimitTimeout, email_bucket
from notifications.selectors import suppressed_addresses
from notifications.services import normalize_address
from notifications.transport import (
    TRANSIENT_HTTP_STATUS,
    Found,
    TransientSendError,
    calls_begin,
    outcomes_save,
    request_may_have_arrived,
    requeue,
)

if TYPE_CHECKING:
    from companies.models import Company

logger = logging.getLogger(__name__)

MERGE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PLACEHOLDER = re.compile(r"\[\[nps:([a-z][a-z0-9_]{0,39})\]\]")
# Characters whose meaning differs between HTML and text (see the module docstring).
_HTML_ACTIVE = re.compile(r"[<>&\"']")


def merge_field(key: str) -> str:
    """The placeholder for a per-recipient value ``key`` (see OutgoingEmail.merge)."""
    if not MERGE_KEY.match(key):
        raise ValueError(f"merge keys are lower-case identifiers, not {key!r}")
    return f"[[nps:{key}]]"


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    reply_to: str | None = None
    from_name: str = ""
    # Carried back in message_status_changed and stored on the Delivery (e.g. the invitation).
    metadata: dict[str, str] = field(default_factory=dict)
    # Values for merge_field() placeholders in subject, text, html and header values.
    merge: dict[str, str] = field(default_factory=dict)
    # Reuse this Delivery row (a retry after TransientSendError) instead of creating one.
    delivery_id: int | None = None

    def placeholders(self) -> set[str]:
        found: set[str] = set()
        for value in (self.subject, self.text, self.html, *self.headers.values()):
            found.update(_PLACEHOLDER.findall(value))
        return found

    def rendered(self) -> OutgoingEmail:
        """This email with its values substituted here (HTML-escaped in the HTML part)."""
        return replace(
            self,
            subject=_substitute(self.subject, self.merge),
            text=_substitute(self.text, self.merge),
            html=_substitute(self.html, self.merge, escape=True),
            headers=_rendered_headers(self),
            merge={},
        )


@dataclass(frozen=True)
class ProviderProfile:
    """What one provider's anymail backend can do with a batch of inline-content emails."""

    # Recipients per API call (1: never batch).
    cap: int
    # How a merge field is written for the provider ("KEY" is replaced), None: no inline merge.
    merge_syntax: str | None = None
    merge_in_subject: bool = True
    esp_extra: Mapping[str, Any] = field(default_factory=dict)


PROVIDERS: dict[str, ProviderProfile] = {
    "postmark": ProviderProfile(cap=500),
    "postmark_bulk": ProviderProfile(cap=500, merge_syntax="{{KEY}}"),
    "mailgun": ProviderProfile(cap=1000, merge_syntax="%recipient.KEY%"),
    "amazon_ses": ProviderProfile(cap=1),
    "brevo": ProviderProfile(cap=1000),
    "mailjet": ProviderProfile(cap=50, merge_syntax="[[var:KEY]]", merge_in_subject=False),
    "sendgrid": ProviderProfile(
        cap=1000,
        merge_syntax="[[nps:KEY]]",
        esp_extra={"merge_field_format": "[[nps:{}]]"},
    ),
    "smtp": ProviderProfile(cap=1),
    "outbox": ProviderProfile(cap=500, merge_syntax="[[nps:KEY]]"),
}


def provider_profile(provider: str | None = None) -> tuple[str, ProviderProfile]:
    """The configured provider's name and profile (EMAIL_BATCH_SIZE may lower the cap)."""
    name = provider or settings.EMAIL_PROVIDER
    key = name
    if name == "postmark" and settings.ANYMAIL.get("POSTMARK_USE_BULK_API"):
        key = "postmark_bulk"
    profile = PROVIDERS[key]
    if settings.EMAIL_BATCH_SIZE > 0:
        profile = replace(profile, cap=min(profile.cap, settings.EMAIL_BATCH_SIZE))
    return name, profile


# --- Sending ----------------------------------------------------------------------------------


@dataclass
class _Item:
    """One email on its way: its row and the form it is sent in."""

    email: OutgoingEmail
    delivery: Delivery
    merged: bool  # values go to the provider's merge (else the email was rendered here)


def email_send(*, company: Company, emails: Sequence[OutgoingEmail]) -> list[Delivery]:
    """Send ``emails`` for ``company``; the Delivery rows in the order of ``emails``.

    See the module docstring for batching, the ledger and the retry contract.
    """
    for email in emails:
        for key in email.merge:
            if not MERGE_KEY.match(key):
                raise ValueError(f"merge keys are lower-case identifiers, not {key!r}")
        missing = email.placeholders() - set(email.merge)
        if missing:
            raise ValueError(f"no merge value for {sorted(missing)} (email to {email.to!r})")
    if not emails:
        return []
    provider, profile = provider_profile()
    deliveries = _ledger_rows(company=company, emails=emails, provider=provider)
    pending = [
        _Item(email=email, delivery=delivery, merged=False)
        for email, delivery in zip(emails, deliveries, strict=True)
        if delivery.status == DeliveryStatus.QUEUED
    ]
    batches = _batches(pending, profile)
    bucket = email_bucket(provider)
    for batch in batches:
        try:
            bucket.acquire(len(batch), timeout=settings.EMAIL_RATE_TIMEOUT)
        except (RateLimitTimeout, RedisError) as err:
            # Nothing of this batch or the later ones was claimed: they are still queued.
            raise TransientSendError(
                f"rate limit: {err}", deliveries=deliveries, retry_after=settings.EMAIL_RATE_TIMEOUT
            ) from err
        try:
            _send_batch(company=company, batch=batch, profile=profile)
        except TransientSendError as err:
            raise TransientSendError(str(err), deliveries=deliveries) from err
    return deliveries


def _ledger_rows(
    *, company: Company, emails: Sequence[OutgoingEmail], provider: str
) -> list[Delivery]:
    """One Delivery per email (notifications.ledger): reused on a retry or created,
    committed before any call; suppressed and invalid addresses refused at once."""
    suppressed = suppressed_addresses(
        company=company, channel=Channel.EMAIL, addresses=[email.to for email in emails]
    )

    def refusal(email: OutgoingEmail) -> tuple[str, str] | None:
        if email.to in suppressed:
            return DeliveryStatus.SUPPRESSED, "suppressed address"
        if not _valid_address(email.to):
            return DeliveryStatus.FAILED, "invalid email address"
        return None

    return ledger_write(
        company=company,
        entries=[
            LedgerEntry(
                fields={
                    "channel": Channel.EMAIL,
                    "to": normalize_address(Channel.EMAIL, email.to)[:254],
                    "subject": _substitute(email.subject, email.merge)[:255],
                    "provider": provider,
                    "metadata": dict(email.metadata),
                },
                delivery_id=email.delivery_id,
                refusal=refusal(email),
            )
            for email in emails
        ],
    )


def _valid_address(address: str) -> bool:
    try:
        validate_email(address.strip())
    except ValidationError:
        return False
    return True


def _batches(items: list[_Item], profile: ProviderProfile) -> list[list[_Item]]:
    """Group emails that can share one provider call, at most ``profile.cap`` each.

    An address appears at most once per batch (merge data is keyed by address), so a second
    email to the same address opens another batch.
    """
    groups: dict[tuple[str, ...], list[tuple[list[_Item], set[str]]]] = {}
    order: list[list[_Item]] = []
    for item in items:
        item.merged = _can_merge(item.email, profile)
        form = item.email if item.merged else item.email.rendered()
        if profile.cap == 1:
            order.append([item])
            continue
        key = (form.subject, form.text, form.html, form.from_name, form.reply_to or "")
        address = item.email.to.strip().lower()
        for batch, addresses in groups.setdefault(key, []):
            if len(batch) < profile.cap and address not in addresses:
                batch.append(item)
                addresses.add(address)
                break
        else:
            batch = [item]
            groups[key].append((batch, {address}))
            order.append(batch)
    return order


def _can_merge(email: OutgoingEmail, profile: ProviderProfile) -> bool:
    if not email.merge or not email.placeholders():
        return False  # nothing to merge: sent as it is
    if profile.merge_syntax is None:
        return False
    if not profile.merge_in_subject and _PLACEHOLDER.search(email.subject):
        return False
    return not any(_HTML_ACTIVE.search(value) for value in email.merge.values())


def _send_batch(*, company: Company, batch: list[_Item], profile: ProviderProfile) -> None:
    """One provider call for the rows of ``batch`` that this call claims (see
    notifications.transport); a transient failure gives them back before raising, an unknown
    outcome leaves them ``sending`` for ``deliveries_resolve``."""
    claimed, call_ref = calls_begin(company, [item.delivery for item in batch])
    won = {row.pk for row in claimed}
    batch = [item for item in batch if item.delivery.pk in won]
    if not batch:
        return
    message = _message(batch, profile, call_ref=call_ref)
    connection = get_connection(ignore_recipient_status=True)
    try:
        connection.send_messages([message])
    except AnymailRecipientsRefused as err:  # only without ignore_recipient_status
        _finish(company, batch, fail_all=f"refused by the provider: {err}")
        return
    except AnymailAPIError as err:
        status = getattr(err, "status_code", None)
        if (status is None and request_may_have_arrived(err)) or (
            status is not None and 200 <= status < 300
        ):
            # Sent, and then the answer was lost or garbled: the provider may have it.
            logger.warning("outcome unknown for call %s: %s", call_ref, err)
            return
        if status is None or status >= 500 or status in TRANSIENT_HTTP_STATUS:
            requeue(company, claimed)
            reason = f"provider unavailable ({status or 'network error'}): {err}"
            raise TransientSendError(reason, deliveries=[]) from err
        _finish(company, batch, fail_all=f"provider refused the message ({status}): {err}")
        return
    except AnymailError as err:  # unsupported feature, serialization: our side, permanent
        _finish(company, batch, fail_all=f"could not be sent: {err}")
        return
    except smtplib.SMTPRecipientsRefused as err:
        _finish(company, batch, fail_all=f"refused by the mail server: {err.recipients}")
        return
    except (smtplib.SMTPException, OSError) as err:
        requeue(company, claimed)
        raise TransientSendError(f"mail server unavailable: {err}", deliveries=[]) from err
    _finish(company, batch, message=message)


def postmark_lookup(company: Company, rows: Sequence[Delivery]) -> dict[int, Found]:
    """Postmark's outbound message search by the call's ``nps_call`` metadata: a row whose
    address the call's messages reached was sent; the others never arrived. One request per
    call (at most 500 messages, one page)."""
    found: dict[int, Found] = {}
    by_call: dict[str, list[Delivery]] = {}
    for row in rows:
        if row.call_ref:
            by_call.setdefault(row.call_ref, []).append(row)
    base = settings.ANYMAIL.get("POSTMARK_API_URL", "https://api.postmarkapp.com/")
    for call_ref, group in by_call.items():
        try:
            answer = requests.get(
                f"{base.rstrip('/')}/messages/outbound",
                params={"count": "500", "offset": "0", "metadata_nps_call": call_ref},
                headers={
                    "Accept": "application/json",
                    "X-Postmark-Server-Token": settings.ANYMAIL.get("POSTMARK_SERVER_TOKEN", ""),
                },
                timeout=settings.EMAIL_REQUEST_TIMEOUT,
            )
            answer.raise_for_status()
            messages = answer.json().get("Messages") or []
        except (requests.RequestException, ValueError) as err:
            raise TransientSendError(f"Postmark search unavailable: {err}", deliveries=[]) from err
        reached: dict[str, str] = {}
        for message in messages:
            for address in message.get("Recipients") or []:
                reached[str(address).strip().lower()] = str(message.get("MessageID") or "")
        for row in group:
            message_id = reached.get(row.to.strip().lower())
            found[row.pk] = (
                Found(DeliveryStatus.SENT, message_id)
                if message_id is not None
                else Found("absent")
            )
    return found


def _message(batch: list[_Item], profile: ProviderProfile, *, call_ref: str) -> AnymailMessage:
    # One recipient gains nothing from the provider's merge: it gets its final content.
    merged = batch[0].merged and len(batch) > 1
    first = batch[0].email if merged else batch[0].email.rendered()
    default_name, default_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    from_email = formataddr((header_safe(first.from_name) or default_name, default_address))
    subject, text, html = header_safe(first.subject), first.text, first.html
    if merged and profile.merge_syntax:
        syntax = profile.merge_syntax
        subject, text, html = (_translate(part, syntax) for part in (subject, text, html))
    message = AnymailMessage(
        subject=subject,
        body=text,
        from_email=from_email,
        to=[item.email.to.strip() for item in batch],
        reply_to=[header_safe(first.reply_to)] if first.reply_to else None,
    )
    if html:
        message.attach_alternative(html, "text/html")
    if len(batch) == 1:
        message.extra_headers = dict(first.headers)
        message.metadata = {**first.metadata, "nps_call": call_ref}
        return message
    message.metadata = {"nps_call": call_ref}  # every recipient's too (merged by anymail)
    # A batch: one message per "to" address, each with its own values, headers and metadata.
    # Identical emails batch with an empty merge_data (anymail's documented way to ask for
    # a batch send without merge fields; Postmark refuses non-empty merge_data there).
    message.merge_data = (
        {
            item.email.to.strip(): {key: header_safe(v) for key, v in item.email.merge.items()}
            for item in batch
        }
        if merged
        else {}
    )
    message.merge_headers = {item.email.to.strip(): _rendered_headers(item.email) for item in batch}
    message.merge_metadata = {item.email.to.strip(): dict(item.email.metadata) for item in batch}
    if profile.esp_extra:
        message.esp_extra = dict(profile.esp_extra)
    return message


def _finish(
    company: Company,
    batch: list[_Item],
    *,
    message: AnymailMessage | None = None,
    fail_all: str = "",
) -> None:
    """Record each recipient's outcome (one UPDATE for the batch) and announce it."""
    now = timezone.now()
    recipients = message.anymail_status.recipients if message is not None else {}
    for item in batch:
        row = item.delivery
        status = recipients.get(item.email.to.strip()) if not fail_all else None
        if fail_all:
            row.status, row.error = DeliveryStatus.FAILED, fail_all[:2000]
        elif status is not None and status.status in {"rejected", "invalid", "failed"}:
            row.status = DeliveryStatus.FAILED
            row.error = {
                "rejected": "rejected by the provider (e.g. an earlier bounce or complaint)",
                "invalid": "invalid address (refused by the provider)",
                "failed": "the provider could not send it",
            }[status.status]
        else:
            # "sent", "queued" (accepted, delivery may be deferred), "unknown" (the call
            # succeeded without a per-recipient answer): all handed over.
            row.status, row.error, row.sent_at = DeliveryStatus.SENT, "", now
            if status is not None and status.message_id:
                row.provider_message_id = str(status.message_id)[:255]
        row.updated_at = now
    outcomes_save(company, [item.delivery for item in batch])


# --- Merge fields -----------------------------------------------------------------------------


def _substitute(text: str, values: Mapping[str, str], *, escape: bool = False) -> str:
    def value(match: re.Match[str]) -> str:
        raw = values.get(match.group(1), match.group(0))
        return html_lib.escape(raw) if escape else raw

    return _PLACEHOLDER.sub(value, text)


def _translate(text: str, syntax: str) -> str:
    return _PLACEHOLDER.sub(lambda match: syntax.replace("KEY", match.group(1)), text)


def _rendered_headers(email: OutgoingEmail) -> dict[str, str]:
    return {
        name: header_safe(_substitute(value, email.merge)) for name, value in email.headers.items()
    }
