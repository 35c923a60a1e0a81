"""Emails of the inbox (alerts, escalations): one template set per message type, rendered
once per language, one email per recipient, sent through the post office."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone, translation

from companies.mail import RenderedEmail, render_email
from companies.models import Company
from companies.zones import company_zone, zone_label
from notifications.email import OutgoingEmail


@dataclass(frozen=True)
class Recipient:
    address: str
    language: str


def fallback_language(company: Company) -> str:
    """For an address that is not a member: the company's language if the app speaks it."""
    ui = {code for code, _name in settings.LANGUAGES}
    return company.default_language if company.default_language in ui else settings.LANGUAGE_CODE


def render_emails(
    *,
    company: Company,
    recipients: Sequence[Recipient],
    template: str,
    context: dict[str, object],
    metadata: dict[str, str],
    from_name: str,
) -> list[OutgoingEmail]:
    """``responses/inbox/email/<template>{_subject.txt,.txt,.html}`` for each recipient.

    Times in them are in the company's zone (``zone_label`` names it), as on its pages.
    """
    context = {**context, "zone_label": zone_label(company.time_zone, full=True)}
    rendered: dict[str, RenderedEmail] = {}
    emails: list[OutgoingEmail] = []
    base = f"responses/inbox/email/{template}"
    zone = company_zone(company)
    for recipient in recipients:
        if recipient.language not in rendered:
            with translation.override(recipient.language), timezone.override(zone):
                rendered[recipient.language] = render_email(base, context)
        email = rendered[recipient.language]
        emails.append(
            OutgoingEmail(
                to=recipient.address,
                subject=email.subject,
                text=email.text,
                html=email.html,
                metadata=metadata,
                from_name=from_name,
            )
        )
    return emails
