"""Unsubscribe links: ``SITE_URL/u/<signed token>/``, no database row behind them.

The token is signed with the project's SECRET_KEY (``django.core.signing``, its own salt) and
holds the company's id, the channel, the normalised address and optionally the language of
the page. It never expires: an unsubscribe link in an old email must keep working
(RFC 8058 asks for that). It cannot be forged for another address or company, and the only
thing it can ever do is suppress the address it names, for the company it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.urls import reverse

from notifications.services import normalize_address

if TYPE_CHECKING:
    from companies.models import Company

SALT = "notifications.unsubscribe"
# Languages a respondent may read the page in (the survey languages).
PAGE_LANGUAGES = frozenset(code for code, _name in settings.SURVEY_LANGUAGES)


@dataclass(frozen=True)
class UnsubscribeRequest:
    company_id: int
    channel: str
    address: str
    language: str | None


def unsubscribe_token(
    *, company: Company, channel: str, address: str, language: str | None = None
) -> str:
    payload: dict[str, object] = {
        "c": company.pk,
        "ch": channel,
        "a": normalize_address(channel, address),
    }
    if language in PAGE_LANGUAGES:
        payload["l"] = language
    return signing.dumps(payload, salt=SALT, compress=True)


def unsubscribe_url(
    *, company: Company, channel: str, address: str, language: str | None = None
) -> str:
    """The absolute one-click unsubscribe URL (also for ``List-Unsubscribe``).

    ``language`` (en/ru/kk, e.g. the invitation's) picks the language of the page.
    """
    token = unsubscribe_token(company=company, channel=channel, address=address, language=language)
    return settings.SITE_URL + reverse("notifications:unsubscribe", kwargs={"token": token})


def unsubscribe_url_maker() -> Callable[[str], str]:
    """token → the absolute unsubscribe URL, with one ``reverse()`` per maker instead of one
    per URL (a send builds hundreds)."""
    before, after = reverse("notifications:unsubscribe", kwargs={"token": "TOKEN"}).split("TOKEN")
    prefix = settings.SITE_URL + before
    return lambda token: f"{prefix}{token}{after}"


def unsubscribe_read(token: str) -> UnsubscribeRequest | None:
    """What a token asks for, or None when it is malformed or tampered with."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    try:
        company_id, channel, address = int(payload["c"]), str(payload["ch"]), str(payload["a"])
    except (KeyError, TypeError, ValueError):
        return None
    language = payload.get("l")
    return UnsubscribeRequest(
        company_id=company_id,
        channel=channel,
        address=address,
        language=language if language in PAGE_LANGUAGES else None,
    )
