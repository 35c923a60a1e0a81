"""Replies to the customer from a follow-up, by email through the post office.

The reply-to address routes the customer's answer back into the same thread:
``reply+<token>@<FOLLOWUP_REPLY_DOMAIN>``, where the domain's inbound mail reaches anymail's
inbound webhook. The token is 128 bits derived from ``SECRET_KEY``, the company and the
follow-up (HMAC), in lower-case base32 (26 characters: mail systems may change the case of
a local part, and the whole local part stays under the 64-character limit). Only its
SHA-256 is stored, on the follow-up, so the inbound side finds the thread by hash without a
company in the address, and a database leak gives no working reply addresses; deriving it
again (not storing it) keeps every later reply on the same address. Rotating ``SECRET_KEY``
changes the address of new replies; the stored hash keeps the old one routing.

Without ``FOLLOWUP_REPLY_DOMAIN`` the reply-to is the agent's own address: the customer's
answer then reaches the agent directly, not the thread.

Inbound: ``responses.receivers.on_inbound_email`` (anymail's ``inbound`` signal) hands each
message to ``followup_record_customer_reply``. The provider's inbound URL itself
(``/anymail/<provider>/inbound/``) is mounted by notifications/urls.py.
"""

from __future__ import annotations

import base64
import hashlib
import html

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from companies import rls
from companies.models import Company, User
from notifications.email import OutgoingEmail, email_send
from notifications.models import Delivery
from responses.followups import followup_record_event, followup_set_status
from responses.models import Followup, FollowupEvent, FollowupEventKind, FollowupStatus

REPLY_PREFIX = "reply+"
REPLY_MAX_CHARS = 10_000


def reply_token(*, company: Company, followup: Followup) -> str:
    digest = salted_hmac(
        "nps_saas/followup-reply/v1", f"{company.pk}:{followup.public_id}", algorithm="sha256"
    ).digest()
    return base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.lower().encode()).hexdigest()


def reply_address(*, company: Company, followup: Followup) -> str | None:
    """The address that brings the customer's answer back to this thread (None: no inbound
    domain configured)."""
    domain = settings.FOLLOWUP_REPLY_DOMAIN
    if not domain:
        return None
    return f"{REPLY_PREFIX}{reply_token(company=company, followup=followup)}@{domain}"


def followup_for_reply_address(address: str) -> Followup | None:
    """The follow-up an inbound email to ``address`` belongs to, or None (for the inbound
    webhook: the token names its own company, like an answer link)."""
    local, _sep, domain = address.strip().lower().rpartition("@")
    expected = (settings.FOLLOWUP_REPLY_DOMAIN or "").lower()
    if not expected or domain != expected or not local.startswith(REPLY_PREFIX):
        return None
    token = local.removeprefix(REPLY_PREFIX)
    if len(token) != 26:
        return None
    followup = (
        Followup.objects.unscoped(reason="an inbound reply names its thread by token")
        .filter(reply_key_hash=_token_hash(token))
        .select_related("company")
        .first()
    )
    if followup is not None:
        rls.activate_company(followup.company_id)  # the inbound webhook's choke point
    return followup


def reply_possible(followup: Followup) -> bool:
    """Only an identified contact with an email, never in an anonymous survey."""
    contact = followup.response.contact
    return not followup.survey.anonymous and contact is not None and bool(contact.email)


def followup_reply_send(
    *, company: Company, followup: Followup, actor: User, subject: str, body: str
) -> Delivery:
    """Email the customer from the follow-up; the thread records it (with the delivery), the
    first reply's time is kept for the loop metrics, and a new / in-progress follow-up now
    waits on the customer. Call outside a transaction (the post office commits first)."""
    if not reply_possible(followup):
        raise ValidationError(_("This respondent cannot be contacted."))
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise ValidationError(_("Write a subject and a message."))
    if len(body) > REPLY_MAX_CHARS or len(subject) > 200:
        raise ValidationError(_("The message is too long."))
    contact = followup.response.contact
    assert contact is not None
    assert contact.email
    token = reply_token(company=company, followup=followup)
    if followup.reply_key_hash != _token_hash(token):
        Followup.objects.for_company(company).filter(pk=followup.pk).update(
            reply_key_hash=_token_hash(token)
        )
        followup.reply_key_hash = _token_hash(token)
    paragraphs = "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in body.split("\n\n")
    )
    (delivery,) = email_send(
        company=company,
        emails=[
            OutgoingEmail(
                to=contact.email,
                subject=subject,
                text=body,
                html=f"<!doctype html><html><body>{paragraphs}</body></html>",
                reply_to=reply_address(company=company, followup=followup) or actor.email,
                from_name=company.sender_name or company.name,
                metadata={"followup": followup.public_id},
            )
        ],
    )
    now = timezone.now()
    Followup.objects.for_company(company).filter(
        pk=followup.pk, first_reply_at__isnull=True
    ).update(first_reply_at=now)
    Followup.objects.for_company(company).filter(
        pk=followup.pk, status__in=[FollowupStatus.NEW, FollowupStatus.IN_PROGRESS]
    ).update(status=FollowupStatus.WAITING, updated_at=now)
    followup_record_event(
        company=company,
        followup=followup,
        kind=FollowupEventKind.REPLY,
        actor=actor,
        body=body,
        data={
            "to": contact.email,
            "subject": subject,
            "delivery": delivery.pk,
            "status": delivery.status,
        },
    )
    return delivery


INBOUND_MAX_CHARS = 20_000


def followup_record_customer_reply(
    *,
    followup: Followup,
    from_email: str,
    subject: str,
    text: str,
    message_id: str = "",
) -> bool:
    """The customer answered a reply: the message joins the thread, and the follow-up is the
    team's turn again (waiting → in progress; a resolved one is reopened). A provider that
    posts the same message twice (same Message-ID) adds it once. False if it was a repeat.
    """
    company = followup.company
    events = FollowupEvent.objects.for_company(company).filter(
        followup=followup, kind=FollowupEventKind.CUSTOMER_REPLY
    )
    if message_id and events.filter(data__message_id=message_id).exists():
        return False
    followup_record_event(
        company=company,
        followup=followup,
        kind=FollowupEventKind.CUSTOMER_REPLY,
        actor=None,
        body=text.strip()[:INBOUND_MAX_CHARS],
        data={"from": from_email[:254], "subject": subject[:200], "message_id": message_id[:255]},
    )
    if followup.status in (FollowupStatus.WAITING, FollowupStatus.RESOLVED):
        followup_set_status(
            company=company, followup=followup, status=FollowupStatus.IN_PROGRESS, actor=None
        )
    return True
