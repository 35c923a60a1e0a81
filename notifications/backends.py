"""``EMAIL_PROVIDER=outbox``: the embedded default's email backend.

Every message is stored as an ``OutboxMessage`` (shown at ``/dev/outbox/``) instead of being
delivered. It behaves like an anymail backend where callers can tell the difference: it sets
``message.anymail_status`` (the outbox id stands in for the provider's message id), and a
batch send (``merge_data`` set) becomes one stored message per recipient with that
recipient's ``merge_headers`` (e.g. its own ``List-Unsubscribe``), as a provider would send it.
The outbox's own merge fields, ``[[nps:key]]`` (what ``notifications.email`` sends it), are
substituted per recipient from ``merge_data`` over ``merge_global_data`` in the subject and
both bodies (HTML-escaped in the HTML), so each stored message has that recipient's links;
any other provider's merge syntax stays unrendered.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Mapping, Sequence
from email.header import decode_header, make_header
from typing import Any

from anymail.message import AnymailRecipientStatus, AnymailStatus
from anymail.utils import UNSET
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError

from notifications.models import OutboxChannel
from notifications.services import outbox_record

# MIME plumbing, not something a developer needs to read in the outbox.
_STRUCTURAL_HEADERS = {"content-type", "mime-version", "content-transfer-encoding"}

# anymail's per-message options worth seeing in the outbox (shown as X-Anymail-* headers).
_ANYMAIL_ATTRIBUTES = (
    "tags",
    "metadata",
    "template_id",
    "merge_global_data",
    "send_at",
    "track_clicks",
    "track_opens",
)


_MERGE_FIELD = re.compile(r"\[\[nps:([a-z][a-z0-9_]*)\]\]")


def _merged(text: str, values: Mapping[str, Any], *, escape: bool = False) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            return match.group(0)
        raw = str(values[match.group(1)])
        return html_lib.escape(raw) if escape else raw

    return _MERGE_FIELD.sub(value, text)


def _is_set(value: Any) -> bool:
    return value is not None and value is not UNSET


def _decoded(value: str) -> str:
    """Undo RFC 2047 encoding so that a Russian subject reads as Russian in the outbox."""
    return str(make_header(decode_header(value)))


def _headers_of(message: EmailMessage) -> dict[str, str]:
    mime = message.message()
    headers: dict[str, str] = {}
    for name, value in mime.items():
        if name.lower() in _STRUCTURAL_HEADERS:
            continue
        text = _decoded(str(value))
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    if message.bcc:  # never written into the MIME headers, but worth seeing here
        headers["Bcc"] = ", ".join(message.bcc)
    for attribute in _ANYMAIL_ATTRIBUTES:
        value = getattr(message, attribute, None)
        if _is_set(value):
            header = "X-Anymail-" + attribute.replace("_", "-").title()
            headers[header] = json.dumps(value, default=str, ensure_ascii=False)
    names = [name for _content, name, _mimetype in _attachments(message)]
    if names:
        headers["X-Outbox-Attachments"] = ", ".join(names)
    return headers


def _attachments(message: EmailMessage) -> list[tuple[Any, str, str]]:
    found = []
    for attachment in message.attachments:
        if isinstance(attachment, tuple):
            filename, content, mimetype = attachment[0], attachment[1], attachment[2]
            found.append((content, filename or "(unnamed)", mimetype or ""))
        else:  # a MIMEBase object
            found.append((None, attachment.get_filename() or "(unnamed)", ""))
    return found


def _bodies(message: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a message, whichever of them it has."""
    body = str(message.body or "")
    if message.content_subtype == "html":
        text, html = "", body
    else:
        text, html = body, ""
    for content, mimetype in getattr(message, "alternatives", None) or []:
        if mimetype == "text/html" and not html:
            html = content.decode() if isinstance(content, bytes) else str(content)
        elif mimetype == "text/plain" and not text:
            text = content.decode() if isinstance(content, bytes) else str(content)
    return text, html


class OutboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                self._store(message)
            except DatabaseError:
                if not self.fail_silently:
                    raise
            else:
                sent += 1
        return sent

    def _store(self, message: EmailMessage) -> None:
        text, html = _bodies(message)
        headers = _headers_of(message)
        statuses: dict[str, AnymailRecipientStatus] = {}
        merge_data: dict[str, Any] | None = getattr(message, "merge_data", None)
        if merge_data is not None and _is_set(merge_data):
            # A batch send: each "to" recipient gets a message of their own.
            merge_headers: dict[str, dict[str, str]] | None = getattr(
                message, "merge_headers", None
            )
            per_recipient_headers = (
                merge_headers if merge_headers is not None and _is_set(merge_headers) else {}
            )
            global_data = getattr(message, "merge_global_data", None)
            global_values = global_data if global_data is not None and _is_set(global_data) else {}
            for recipient in message.to:
                values = {**global_values, **merge_data.get(recipient, {})}
                own = dict(headers, To=recipient)
                own.update(per_recipient_headers.get(recipient, {}))
                if recipient in merge_data:
                    own["X-Anymail-Merge-Data"] = json.dumps(
                        merge_data[recipient], default=str, ensure_ascii=False
                    )
                subject = _merged(str(message.subject), values)
                own["Subject"] = subject
                stored = outbox_record(
                    channel=OutboxChannel.EMAIL,
                    to=[recipient],
                    subject=subject,
                    text=_merged(text, values),
                    html=_merged(html, values, escape=True),
                    headers=own,
                )
                statuses[recipient] = AnymailRecipientStatus(message_id=stored.id, status="sent")
        else:
            stored = outbox_record(
                channel=OutboxChannel.EMAIL,
                to=list(message.to),
                subject=str(message.subject),
                text=text,
                html=html,
                headers=headers,
            )
            statuses = {
                recipient: AnymailRecipientStatus(message_id=stored.id, status="sent")
                for recipient in message.recipients()
            }
        status = AnymailStatus()
        status.set_recipient_status(statuses)
        message.anymail_status = status  # type: ignore[attr-defined]
