"""Answer links: the absolute URLs an invitation carries (email buttons, text messages), and a
survey's open web link with its QR code and kiosk address."""

from __future__ import annotations

import hmac
import io
from collections.abc import Callable

import segno
from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

from surveys.models import (
    Invitation,
    Survey,
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


# --- The open web link of a survey ---------------------------------------------------------------


def web_link_url(survey: Survey) -> str:
    """The survey's open web link (website, QR code, chat), absolute (``SITE_URL``)."""
    return settings.SITE_URL + reverse("link", kwargs={"public_id": survey.public_id})


def web_link_short(survey: Survey) -> str:
    """The web link as people type it from a poster: without ``https://`` or ``http://``."""
    return web_link_url(survey).split("://", 1)[-1]


def _qr(url: str) -> segno.QRCode:
    # Error level M: survives a scuffed or partly covered print, still a small symbol.
    return segno.make(url, error="m")


def web_link_qr_svg(survey: Survey, *, scale: int = 10, title: str = "") -> bytes:
    """The web link's QR code as a standalone SVG file (black on white, quiet zone kept)."""
    buffer = io.BytesIO()
    _qr(web_link_url(survey)).save(
        buffer, kind="svg", scale=scale, border=4, xmldecl=True, title=title or None
    )
    return buffer.getvalue()


def web_link_qr_svg_inline(survey: Survey, *, scale: int = 8) -> str:
    """The QR code as an ``<svg>`` element for a page (no XML declaration)."""
    return str(_qr(web_link_url(survey)).svg_inline(scale=scale, border=4, omitsize=True))


def web_link_qr_png(survey: Survey, *, scale: int = 16) -> bytes:
    """The QR code as a PNG, large enough to print sharp at poster size."""
    buffer = io.BytesIO()
    _qr(web_link_url(survey)).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


KIOSK_PARAMETER = "kiosk"


def kiosk_key(survey: Survey) -> str:
    """The key of a survey's kiosk mode (``/l/<id>/?kiosk=<key>``): derived, never stored.

    Only the company's members see it (on the survey's page), so only a device they set up
    gets the kiosk's answer limit; the public link keeps the tighter one. Changes if
    ``SECRET_KEY`` is rotated (the kiosk's address must then be opened again).
    """
    return salted_hmac(
        "nps_saas/kiosk/v1", f"{survey.company_id}:{survey.public_id}", algorithm="sha256"
    ).hexdigest()[:32]


def kiosk_key_valid(survey: Survey, key: str) -> bool:
    return bool(key) and hmac.compare_digest(kiosk_key(survey), key)


def kiosk_url(survey: Survey) -> str:
    """The web link in kiosk mode: a fresh question for each person, on a shop's tablet."""
    return f"{web_link_url(survey)}?{KIOSK_PARAMETER}={kiosk_key(survey)}"
