"""Emails about the team (one function per message: subject, text and HTML side by side)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils import timezone, translation

from companies.mail import render_email
from companies.models import TeamInvite
from companies.zones import company_zone


def send_team_invite(*, invite: TeamInvite, token: str) -> None:
    """Email the accept link. Written in the inviter's language: the invitee's is unknown."""
    url = settings.SITE_URL + reverse("invite-accept", kwargs={"token": token})
    inviter = invite.invited_by
    context = {"invite": invite, "company": invite.company, "url": url, "inviter": inviter}
    language = inviter.language if inviter else settings.LANGUAGE_CODE
    with translation.override(language), timezone.override(company_zone(invite.company)):
        email = render_email("companies/email/team_invite", context)
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.text,
        to=[invite.email],
        # A question about the invitation should reach the person who sent it, not us.
        reply_to=[inviter.email] if inviter else None,
    )
    message.attach_alternative(email.html, "text/html")
    message.send()
