"""Slack incoming-webhook posts: the message body (Block Kit with a plain-text fallback) and
the URL check. Posts travel as ``WebhookMessage`` rows (``kind="slack"``) through the same
hardened client, claim and retries as outbound webhooks (notifications/webhooks.py).

Knows nothing about surveys: the caller gives a title, labelled fields, a quote and a link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from notifications.http_client import UnsafeURL, url_check
from notifications.webhooks import slack_message_enqueue

if TYPE_CHECKING:
    from companies.models import Company
    from notifications.webhooks_models import WebhookMessage

QUOTE_MAX_CHARS = 500


def slack_url_validate(url: str) -> None:
    """A form's check of an incoming-webhook URL: https, and an address we may post to.

    hooks.slack.com is what Slack hands out, but any https URL is accepted (Slack-compatible
    chat tools such as Mattermost take the same posts)."""
    if not url.strip().lower().startswith("https://"):
        raise ValidationError(_("Use the https:// URL Slack gave you."))
    try:
        url_check(url)
    except UnsafeURL as err:
        raise ValidationError(str(err)) from err


def escape(text: str) -> str:
    """Slack's mrkdwn control characters (``<>&``) as entities, so text cannot ping
    @channel or forge links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(
    *,
    title: str,
    fields: Sequence[tuple[str, str]],
    quote: str = "",
    link_url: str = "",
    link_text: str = "",
) -> dict[str, Any]:
    """An incoming-webhook body: a header, the fields, the quote, a link button."""
    quote = quote.strip()
    if len(quote) > QUOTE_MAX_CHARS:
        quote = quote[: QUOTE_MAX_CHARS - 1] + "…"
    lines = [f"*{escape(label)}:* {escape(value)}" for label, value in fields]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines) or " "}},
    ]
    if quote:
        quoted = "\n".join(f">{escape(line)}" for line in quote.splitlines())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    if link_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": link_text or link_url},
                        "url": link_url,
                    }
                ],
            }
        )
    fallback = " · ".join([title, *(f"{label}: {value}" for label, value in fields)])
    return {"text": escape(fallback), "blocks": blocks}


def slack_post_enqueue(
    *, company: Company, url: str, body: dict[str, Any], event_type: str
) -> WebhookMessage:
    """Queue the post (in the caller's transaction: see ``slack_message_enqueue``)."""
    return slack_message_enqueue(company=company, url=url, body=body, event_type=event_type)
