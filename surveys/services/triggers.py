"""The transactional trigger: survey one person now or after a delay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company
from notifications.models import Channel
from surveys.models import (
    LANGUAGE_CHOICES,
    CampaignChannel,
    Contact,
    Invitation,
    InvitationEvent,
    Survey,
)
from surveys.services.contacts import contact_clean, contact_update, contact_upsert
from surveys.services.invitations import (
    CHANNEL_ADDRESS_FIELD,
    SMS_CHANNELS,
    contact_address,
    contact_channel,
    invitation_new,
    suppressed_on,
    throttled_contact_ids,
)
from surveys.services.surveys import survey_check_sendable
from surveys.sms import quiet_hours_until

MAX_TRIGGER_DELAY = timedelta(days=90)

SURVEY_LANGUAGE_CODES = frozenset(code for code, _label in LANGUAGE_CHOICES)

TRIGGER_CREATED = "created"

TRIGGER_THROTTLED = "throttled"

TRIGGER_SUPPRESSED = "suppressed"


def _trigger_check(
    *, channel: str, email: str | None, phone: str | None, delay: int, language: str | None
) -> None:
    """The trigger's own arguments; every problem at once, as a ValidationError."""
    errors: dict[str, list[str]] = {}
    if channel == CampaignChannel.PREFERRED:
        if not email and not phone:
            errors["email"] = [_("An email address or a phone number is needed.")]
    elif channel not in CHANNEL_ADDRESS_FIELD:
        errors["channel"] = [_("Unknown channel.")]
    elif channel == Channel.EMAIL and not email:
        errors["email"] = [_("An email address is needed for the email channel.")]
    elif channel in SMS_CHANNELS and not phone:
        errors["phone"] = [_("A phone number is needed for the sms and whatsapp channels.")]
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        errors["delay"] = [_("A whole number of seconds, 0 or more.")]
    elif delay > MAX_TRIGGER_DELAY.total_seconds():
        errors["delay"] = [_("At most 90 days (7776000 seconds).")]
    if language is not None and language not in SURVEY_LANGUAGE_CODES:
        errors["language"] = [
            _("Use one of %(choices)s.") % {"choices": ", ".join(sorted(SURVEY_LANGUAGE_CODES))}
        ]
    if errors:
        raise ValidationError(errors)


def invitation_trigger(
    *,
    company: Company,
    survey: Survey,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    properties: dict[str, Any] | None = None,
    channel: str = Channel.EMAIL,
    delay: int = 0,
    language: str | None = None,
    force: bool = False,
) -> tuple[Invitation | None, str]:
    """The transactional trigger: survey one person now or after ``delay`` seconds.

    Creates or updates the contact (``contact_upsert``; ``properties`` merge into it and are
    also kept on the invitation), then refuses a suppressed address (always) and a contact
    within the throttle window (unless ``force``), else schedules the invitation for the
    dispatcher. Returns ``(invitation, "created")`` or ``(None, "throttled"|"suppressed")``.
    The contact row is locked while deciding, so two simultaneous triggers for one person
    cannot both pass the throttle.
    """
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    _trigger_check(channel=channel, email=email, phone=phone, delay=delay, language=language)
    survey_check_sendable(survey)
    with transaction.atomic():
        # A phone-only trigger (sms, whatsapp) finds the contact by number: contacts are
        # otherwise matched by email, and a new contact per text message would be wrong.
        by_phone = None
        if phone and not email:
            by_phone = (
                Contact.objects.for_company(company)
                .filter(phone=contact_clean(company=company, phone=phone)["phone"])
                .order_by("-pk")
                .first()
            )
        if by_phone is not None:
            contact = contact_update(
                company=company, contact=by_phone, name=name, properties=properties
            )
        else:
            contact, _created = contact_upsert(
                company=company, email=email, phone=phone, name=name, properties=properties
            )
        contact = Contact.objects.for_company(company).select_for_update().get(pk=contact.pk)
        if channel == CampaignChannel.PREFERRED:
            channel = contact_channel(contact)
        address = contact_address(contact, channel)
        assert address
        if suppressed_on(company=company, channel=channel, addresses=[address]):
            return None, TRIGGER_SUPPRESSED
        when = timezone.now() + timedelta(seconds=delay)
        if channel in SMS_CHANNELS:
            # A text due inside the recipient's quiet hours waits for the window: the answer
            # says when it really goes out (the send would hold it until then anyway).
            when = quiet_hours_until(contact=contact, company=company, now=when) or when
        if not force and throttled_contact_ids(
            company=company, survey=survey, contact_ids=[contact.pk], at=when
        ):
            return None, TRIGGER_THROTTLED
        invitation = invitation_new(
            company=company,
            survey=survey,
            contact=contact,
            scheduled_for=when,
            language=language,
            properties=contact_clean(company=company, properties=properties or {})["properties"],
            channel=channel,
        )
        invitation.save()
        InvitationEvent.objects.create(
            company=company,
            invitation=invitation,
            event="scheduled",
            detail="forced past the throttle" if force else "",
        )
    return invitation, TRIGGER_CREATED
