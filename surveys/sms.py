"""SMS and WhatsApp invitations: their text, and when a recipient may get one.

Quiet hours are kept in the recipient's local time: the contact's time zone, else the time
zone of the phone number's region (``phonenumbers``; of a country's several zones the
company's if it is one of them, else the first), else the company's. The window is
``Company.quiet_hours_start`` to ``quiet_hours_end`` (default 09:00–20:00; a start after the
end is a window across midnight).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta, tzinfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from companies.models import Company
from notifications.sms_segments import gsm7_friendly
from surveys.defaults import sms_text
from surveys.models import Contact, Survey


def sms_invitation_text(
    *, survey: Survey, company: Company, language: str, name: str, link: str
) -> str:
    """The invitation SMS: question, "reply with a number from 0 to 10", the answer link as
    a fallback, and how to opt out; typographic characters replaced where that keeps an
    otherwise GSM-7 text out of UCS-2."""
    from surveys.selectors import survey_language, survey_text

    language = survey_language(survey=survey, language=language)
    question = survey_text(survey=survey, company=company, language=language, key="question")
    name = name.strip()
    if survey.anonymous:
        name = ""
    template = sms_text(language=language, key="invitation" if name else "invitation_anonymous")
    text = (
        template.replace("{question}", question)
        .replace("{name}", name)
        .replace("{link}", link)
        .replace("{company}", company.name)
    )
    return gsm7_friendly(text)


def whatsapp_template(*, company: Company, survey: Survey, language: str) -> str:
    """The company's approved WhatsApp content template (content SID) for ``language``, else
    for the survey's default language, else "" (the text goes free-form, which WhatsApp only
    delivers inside a 24-hour session the customer opened)."""
    templates = company.whatsapp_templates or {}
    return str(templates.get(language) or templates.get(survey.default_language) or "")


def _zone(name: str) -> tzinfo | None:
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def recipient_time_zone(*, contact: Contact, company: Company) -> tzinfo:
    """The contact's time zone, else its phone number's region's, else the company's."""
    own = _zone(contact.time_zone)
    if own is not None:
        return own
    if contact.phone:
        try:
            number = phonenumbers.parse(contact.phone, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            zones = [z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
            # A country with several zones (+7: Kazakhstan and Russia): the company's own
            # zone when it is one of them, else the first.
            if company.time_zone in zones:
                zones = [company.time_zone]
            found = _zone(zones[0]) if zones else None
            if found is not None:
                return found
    return _zone(company.time_zone) or zoneinfo.ZoneInfo("UTC")


def _inside(moment: time, start: time, end: time) -> bool:
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # a window across midnight


def quiet_hours_until(*, contact: Contact, company: Company, now: datetime) -> datetime | None:
    """None when a message may go to ``contact`` now; else when the window next opens."""
    zone = recipient_time_zone(contact=contact, company=company)
    local = now.astimezone(zone)
    start, end = company.quiet_hours_start, company.quiet_hours_end
    if _inside(local.time(), start, end):
        return None
    day = local.date()
    if local.time() >= start:  # after today's window (start < end): tomorrow's
        day += timedelta(days=1)
    opens = datetime.combine(day, start, tzinfo=zone)
    return opens if opens > now else now
