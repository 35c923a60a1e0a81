"""Answer links: the absolute URLs an invitation carries (email buttons, text messages)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.urls import reverse

from surveys.models import (
    Invitation,
)
from surveys.tokens import short_token_for, token_for


def answer_url(invitation: Invitation, score: int | None = None) -> str:
    """The absolute answer link of ``invitation`` (with a score: the link of that button).

    The token is derived again from the stored nonce; only its hash is in the database.
    """
    url = answer_url_maker()(token_for(invitation.token_nonce))
    return url if score is None else score_link(url, score)


def answer_link_for_token(token: str) -> str:
    """The absolute answer link of a token (previews use a sample token)."""
    return answer_url_maker()(token)


def sms_answer_url(invitation: Invitation) -> str:
    """The answer link a text message carries (the short token: see ``sms_token_for``)."""
    return answer_url_maker()(sms_token_for(invitation))


def sms_token_for(invitation: Invitation) -> str:
    """The token a text message carries: the short one when the invitation has it (SMS and
    WhatsApp invitations since short links exist), else the full one."""
    if invitation.short_token_hash:
        return short_token_for(invitation.token_nonce)
    return token_for(invitation.token_nonce)


def score_link(answer_link: str, score: int) -> str:
    """The link of one score button: the answer link with the score appended (the
    ``answer-score`` route is the ``answer`` route plus ``<score>/``; a test holds them
    together). Also used on a merge placeholder, so one per-recipient value serves all eleven
    buttons."""
    return f"{answer_link}{score}/"


def answer_url_maker() -> Callable[[str], str]:
    """token → absolute answer link, with one ``reverse()`` per maker instead of one per
    link (a send builds thousands)."""
    before, after = reverse("answer", kwargs={"token": "TOKEN"}).split("TOKEN")
    prefix = settings.SITE_URL + before
    return lambda token: f"{prefix}{token}{after}"
