"""Answering by text message: the SMS/WhatsApp conversation of an invitation.

A reply (already verified as Twilio's and matched to the company owning the receiving number,
see ``responses.views_sms``) is read in this order:

1. Keywords, the whole message: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, «СТОП»,
   «ОТПИСАТЬСЯ» suppress the number for the company and confirm; START, UNSTOP lift that;
   HELP, INFO answer with the company's name and how to opt out. With Twilio Advanced
   Opt-Out Twilio has answered the keyword itself (it says so in ``OptOutType``): we record
   the same and reply nothing.
2. The latest open invitation sent to that number on that channel by the company (sent, link
   not expired, conversation not closed). None: a polite reply, nothing recorded.
3. Not yet answered: a score 0–10 (``parse_score``) is recorded (``response_record``,
   channel sms/whatsapp) and answered with the follow-up question for its category; anything
   else gets a short help reply. Answered: the message is the comment, the conversation is
   closed and a thank-you goes back; later messages find no open invitation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from companies.models import Company
from notifications.models import SuppressionReason
from notifications.services import normalize_address, suppression_add, suppression_lift_stop
from responses.models import Response, category_of
from responses.services import COMMENT_MAX_CHARS, response_record
from surveys.defaults import sms_text
from surveys.models import Invitation, InvitationEvent, InvitationStatus
from surveys.selectors import survey_text
from surveys.services.invitations import invitation_event_add

STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "стоп", "отписаться"}
)
START_WORDS = frozenset({"start", "unstop", "старт"})
HELP_WORDS = frozenset({"help", "info", "помощь", "көмек"})
# The event that closes an invitation's conversation (a comment arrived).
CLOSED_EVENT = "sms_closed"

# "9/10", "9 из 10", "9 out of 10": the "of 10" part is not a second number.
_OUT_OF_TEN = re.compile(r"\s*(?:/|из|out\s+of|of)\s*10\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_KEYWORD_TRIM = ".!?,;:«»\"' \t\r\n"


@dataclass(frozen=True)
class ConversationReply:
    """What a reply did (``outcome``) and the messages to answer it with."""

    outcome: str  # stopped | started | help | no_invitation | score | invalid | comment
    messages: tuple[str, ...]


def parse_score(text: str) -> int | None:
    """The 0–10 score in a short reply, or None.

    Tolerates spaces, punctuation and words around it ("9/10", "10!", "Оценка: 8",
    "моя оценка 7 из 10"); a message with two numbers or a long one is not a score.
    """
    text = text.strip()
    if not text or len(text) > 40:
        return None
    numbers = _NUMBER.findall(_OUT_OF_TEN.sub("", text))
    if len(numbers) != 1:
        return None
    score = int(numbers[0])
    return score if 0 <= score <= 10 else None


def _keyword(text: str) -> str:
    return text.strip(_KEYWORD_TRIM).casefold()


def _phone_of(address: str) -> str:
    return address.split(":", 1)[1] if address.startswith("whatsapp:") else address


def _open_invitation(*, company: Company, channel: str, phone: str) -> Invitation | None:
    closed = InvitationEvent.objects.filter(company_id=company.pk).filter(
        invitation=OuterRef("pk"), event=CLOSED_EVENT
    )
    return (
        Invitation.objects.for_company(company)
        .filter(
            channel=channel,
            contact__phone=phone,
            status=InvitationStatus.SENT,
            expires_at__gt=timezone.now(),
        )
        .exclude(Exists(closed))
        .select_related("survey", "contact")
        .order_by("-sent_at", "-pk")
        .first()
    )


def _language_for(*, company: Company, channel: str, phone: str) -> str:
    """The language of the latest invitation to that number, else the company's."""
    latest = (
        Invitation.objects.for_company(company)
        .filter(channel=channel, contact__phone=phone)
        .order_by("-created_at", "-pk")
        .values_list("language", flat=True)
        .first()
    )
    return latest or company.default_language


def _text(key: str, *, language: str, company: Company) -> str:
    return sms_text(language=language, key=key).replace("{company}", company.name)


def sms_reply_handle(
    *, company: Company, channel: str, from_address: str, body: str, opt_out_type: str = ""
) -> ConversationReply:
    """Act on one reply from ``from_address`` to ``company`` on ``channel`` (sms, whatsapp)."""
    phone = normalize_address(channel, _phone_of(from_address))
    keyword = _keyword(body)
    twilio_answered = bool(opt_out_type)  # Advanced Opt-Out replied already
    if opt_out_type:
        keyword = opt_out_type.strip().casefold()
    if keyword in STOP_WORDS:
        suppression_add(
            company=company,
            channel=channel,
            address=phone,
            reason=SuppressionReason.STOPPED,
            detail=f"replied {body.strip()[:40]!r}",
        )
        return _reply(
            "stopped", company=company, channel=channel, phone=phone, quiet=twilio_answered
        )
    if keyword in START_WORDS:
        suppression_lift_stop(company=company, channel=channel, address=phone)
        return _reply(
            "started", company=company, channel=channel, phone=phone, quiet=twilio_answered
        )
    if keyword in HELP_WORDS:
        return _reply("help", company=company, channel=channel, phone=phone, quiet=twilio_answered)
    with transaction.atomic():
        invitation = _open_invitation(company=company, channel=channel, phone=phone)
        if invitation is None:
            return _reply("no_invitation", company=company, channel=channel, phone=phone)
        return _answer(company=company, invitation=invitation, channel=channel, body=body)


def _reply(
    key: str, *, company: Company, channel: str, phone: str, quiet: bool = False
) -> ConversationReply:
    if quiet:
        return ConversationReply(outcome=key, messages=())
    language = _language_for(company=company, channel=channel, phone=phone)
    return ConversationReply(
        outcome=key, messages=(_text(key, language=language, company=company),)
    )


def _answer(
    *, company: Company, invitation: Invitation, channel: str, body: str
) -> ConversationReply:
    # Locked: two replies arriving together take turns (score first, then the comment).
    Invitation.objects.for_company(company).select_for_update().filter(pk=invitation.pk).first()
    invitation.refresh_from_db(fields=["answered_at"])
    survey, language = invitation.survey, invitation.language
    if invitation.answered_at is None:
        score = parse_score(body)
        if score is None:
            text = _text("help_score", language=language, company=company)
            return ConversationReply(outcome="invalid", messages=(text,))
        response_record(
            invitation=invitation,
            survey=survey,
            score=score,
            channel=channel,
            language=language,
        )
        invitation_event_add(company=company, invitation=invitation, event="sms_score")
        key = f"why_{category_of(score)}"
        follow_up = survey_text(survey=survey, company=company, language=language, key=key)
        return ConversationReply(outcome="score", messages=(follow_up,))
    existing = (
        Response.objects.for_company(company).filter(invitation=invitation).only("score").first()
    )
    if existing is None:  # answered elsewhere, response gone: start over with a score
        text = _text("help_score", language=language, company=company)
        return ConversationReply(outcome="invalid", messages=(text,))
    response_record(
        invitation=invitation,
        survey=survey,
        score=existing.score,
        comment=body.strip()[:COMMENT_MAX_CHARS],
        channel=channel,
        language=language,
    )
    invitation_event_add(company=company, invitation=invitation, event=CLOSED_EVENT)
    thanks = survey_text(survey=survey, company=company, language=language, key="thanks")
    return ConversationReply(outcome="comment", messages=(thanks,))
