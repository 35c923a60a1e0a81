"""Writes of the surveys app: keyword-only, the company always explicit."""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import math
import re
import secrets
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from companies.models import Company, User
from companies.tenancy import tenant_update_per_row
from notifications.models import Channel
from surveys.defaults import (
    EDITABLE_TEXT_KEYS,
    LANGUAGES,
    TEXT_DEFAULT_MAX_LENGTH,
    TEXT_MAX_LENGTH,
)
from surveys.models import (
    LANGUAGE_CHOICES,
    Campaign,
    CampaignChannel,
    CampaignStatus,
    Contact,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    Survey,
    SurveyKind,
    SurveyStatus,
)
from surveys.tokens import new_nonce, short_token_for, token_for, token_hash

# --- Contacts ---------------------------------------------------------------------------------

CONTACT_LANGUAGES = frozenset(code for code, _label in LANGUAGE_CHOICES)
PROPERTY_KEY_MAX_LENGTH = 64
PROPERTY_VALUE_MAX_LENGTH = 1000
MAX_PROPERTIES = 200
_email_validator = EmailValidator()
_LANGUAGE_TAG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]+)*$")
# Core fields written by contact_upsert / the import, in the order of the model.
CONTACT_CORE_FIELDS = ("email", "phone", "name", "language", "time_zone", "external_id")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def contact_phone_region(*, company: Company) -> str | None:
    """The region numbers without a ``+country`` prefix are read in: the company's country."""
    country = (company.country or "").strip().upper()
    return country if len(country) == 2 else None


def normalize_email(value: str) -> str:
    """Lower-cased and validated; raises ``ValidationError``."""
    email = value.strip().lower()
    _email_validator(email)
    return email


def normalize_phone(value: str, *, region: str | None) -> str:
    """E.164 (``+77011234567``); a national number is read in ``region``."""
    text = value.strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        if region is None and not text.startswith("+"):
            raise ValidationError(
                _("Enter the phone number in international format, e.g. +7 701 123 4567.")
            )
        raise ValidationError(_("Enter a valid phone number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_language(value: str) -> str:
    """``en`` / ``RU`` / ``kk-KZ`` / ``ru_RU`` → the survey language code."""
    match = _LANGUAGE_TAG.match(value.strip())
    code = match.group(1).lower() if match else ""
    if code not in CONTACT_LANGUAGES:
        raise ValidationError(
            _("Unknown language “%(value)s”: use one of %(choices)s.")
            % {"value": value, "choices": ", ".join(sorted(CONTACT_LANGUAGES))}
        )
    return code


def normalize_time_zone(value: str) -> str:
    zone = value.strip()
    if zone not in _time_zones():
        raise ValidationError(
            _("Unknown time zone “%(value)s”: use an IANA name such as Asia/Almaty.")
            % {"value": value}
        )
    return zone


def normalize_property(key: object, value: object) -> tuple[str, str | int | float | bool | None]:
    """Check one property; ``None`` as the value means "remove this property"."""
    if not isinstance(key, str) or not key.strip():
        raise ValidationError(_("Property names must be non-empty text."))
    key = key.strip()
    if len(key) > PROPERTY_KEY_MAX_LENGTH:
        raise ValidationError(
            _("Property name “%(key)s…” is longer than %(max)d characters.")
            % {"key": key[:20], "max": PROPERTY_KEY_MAX_LENGTH}
        )
    if value is None or isinstance(value, bool | int):
        return key, value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(_("Property “%(key)s” is not a finite number.") % {"key": key})
        return key, value
    if isinstance(value, str):
        if len(value) > PROPERTY_VALUE_MAX_LENGTH:
            raise ValidationError(
                _("Property “%(key)s” is longer than %(max)d characters.")
                % {"key": key, "max": PROPERTY_VALUE_MAX_LENGTH}
            )
        return key, value
    raise ValidationError(
        _("Property “%(key)s” must be text, a number or true/false.") % {"key": key}
    )


def normalize_properties(properties: object) -> dict[str, Any]:
    if not isinstance(properties, dict):
        raise ValidationError(_("Properties must be an object of name → value."))
    if len(properties) > MAX_PROPERTIES:
        raise ValidationError(
            _("At most %(max)d properties per contact.") % {"max": MAX_PROPERTIES}
        )
    return dict(normalize_property(key, value) for key, value in properties.items())


def contact_clean(
    *,
    company: Company,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    language: str | None = None,
    time_zone: str | None = None,
    external_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate and normalise contact fields; only the given ones (not ``None``) are returned.

    A blank string clears a field (email, phone and external id become NULL). Every field's
    errors are collected into one ``ValidationError`` keyed by field name.
    """
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    region = contact_phone_region(company=company)
    given: dict[str, Any] = {
        "email": email,
        "phone": phone,
        "name": name,
        "language": language,
        "time_zone": time_zone,
        "external_id": external_id,
    }
    normalizers: dict[str, Any] = {
        "email": normalize_email,
        "phone": lambda v: normalize_phone(v, region=region),
        "language": normalize_language,
        "time_zone": normalize_time_zone,
    }
    for field, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str):
            errors[field] = [_("Must be text.")]
            continue
        if not value.strip():
            cleaned[field] = None if field in ("email", "phone", "external_id") else ""
            continue
        try:
            cleaned[field] = normalizers[field](value) if field in normalizers else value.strip()
        except ValidationError as exc:
            errors[field] = exc.messages
    if "name" in cleaned and len(cleaned["name"]) > 200:
        errors["name"] = [_("At most 200 characters.")]
    if cleaned.get("external_id") and len(cleaned["external_id"]) > 128:
        errors["external_id"] = [_("At most 128 characters.")]
    if properties is not None:
        try:
            cleaned["properties"] = normalize_properties(properties)
        except ValidationError as exc:
            errors["properties"] = exc.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def merge_properties(existing: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``existing``; a ``None`` value removes that property."""
    merged = dict(existing or {})
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _contact_apply(contact: Contact, cleaned: dict[str, Any]) -> None:
    for field in CONTACT_CORE_FIELDS:
        if field in cleaned:
            setattr(contact, field, cleaned[field])
    if "properties" in cleaned:
        contact.properties = merge_properties(contact.properties, cleaned["properties"])


def _contact_check_unique(*, company: Company, contact: Contact) -> None:
    """Refuse an email or external id that another contact of the company already has."""
    others = Contact.objects.for_company(company).exclude(pk=contact.pk)
    errors = {}
    if contact.email and others.filter(email=contact.email).exists():
        errors["email"] = [_("Another contact already has this email address.")]
    if contact.external_id and others.filter(external_id=contact.external_id).exists():
        errors["external_id"] = [_("Another contact already has this external id.")]
    if not contact.email and not contact.phone:
        errors["email"] = [_("A contact needs an email address or a phone number.")]
    if errors:
        raise ValidationError(errors)


def contact_upsert(
    *,
    company: Company,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    language: str | None = None,
    time_zone: str | None = None,
    external_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> tuple[Contact, bool]:
    """Create a contact, or update the one it matches; returns ``(contact, created)``.

    Matching: by ``external_id`` when given and known, else by ``email``. Only the given
    fields change (``None`` = leave as is); ``properties`` are merged into the existing ones
    (a ``None`` value removes a key). A row matched by email that carries a *different*
    external id than the contact's is refused rather than re-keyed. Concurrent upserts of the
    same person are safe: the loser of the unique-constraint race retries and updates.
    """
    cleaned = contact_clean(
        company=company,
        email=email,
        phone=phone,
        name=name,
        language=language,
        time_zone=time_zone,
        external_id=external_id,
        properties=properties,
    )
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _contact_upsert_once(company=company, cleaned=cleaned)
        except IntegrityError:
            # Someone created the same email / external id in between: match it now.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _contact_upsert_once(*, company: Company, cleaned: dict[str, Any]) -> tuple[Contact, bool]:
    contacts = Contact.objects.for_company(company).select_for_update()
    contact = None
    if cleaned.get("external_id"):
        contact = contacts.filter(external_id=cleaned["external_id"]).first()
    if contact is None and cleaned.get("email"):
        contact = contacts.filter(email=cleaned["email"]).first()
        if (
            contact is not None
            and cleaned.get("external_id")
            and contact.external_id
            and contact.external_id != cleaned["external_id"]
        ):
            raise ValidationError(
                {
                    "external_id": [
                        _(
                            "This email address belongs to a contact with another external "
                            "id (%(other)s)."
                        )
                        % {"other": contact.external_id}
                    ]
                }
            )
    created = contact is None
    if contact is None:
        contact = Contact(company=company)
    _contact_apply(contact, cleaned)
    _contact_check_unique(company=company, contact=contact)
    contact.save()
    return contact, created


def contact_update(*, company: Company, contact: Contact, **fields: Any) -> Contact:
    """Change the given fields of ``contact`` (same rules as ``contact_upsert``)."""
    if contact.company_id != company.pk:
        raise ValueError("contact belongs to another company")
    cleaned = contact_clean(company=company, **fields)
    with transaction.atomic():
        _contact_apply(contact, cleaned)
        _contact_check_unique(company=company, contact=contact)
        contact.save()
    return contact


def contact_delete(*, company: Company, contact: Contact) -> None:
    """Delete the contact and its invitations; its responses stay, no longer linked to anyone."""
    if contact.company_id != company.pk:
        raise ValueError("contact belongs to another company")
    Contact.objects.for_company(company).filter(pk=contact.pk).delete()


# --- Surveys ----------------------------------------------------------------------------------

SURVEY_EDITABLE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "default_language",
        "texts",
        "extra_questions",
        "logo_url",
        "promoter_link_url",
        "accent_color",
        "scale_style",
        "throttle_days",
        "sample_percent",
        "reminder_after_days",
        "link_valid_days",
    }
)
EXTRA_QUESTIONS_MAX = 5
EXTRA_QUESTION_KINDS = ("choice", "text")
CHOICES_MIN, CHOICES_MAX = 2, 10
EXTRA_TEXT_MAX_LENGTH = 300
CHOICE_MAX_LENGTH = 100
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_QUESTION_ID_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
_https_only = URLValidator(schemes=["https"])
# Survey fields that take an https:// address, and the error for anything else.
_HTTPS_FIELDS = {
    "logo_url": gettext_lazy("Use an https:// address of an image."),
    "promoter_link_url": gettext_lazy("Use an https:// address."),
}

# Which status a survey may move to from each status. Archiving is allowed from anywhere;
# an archived survey comes back paused, so that it never starts sending by surprise.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    SurveyStatus.DRAFT: frozenset({SurveyStatus.ACTIVE, SurveyStatus.ARCHIVED}),
    SurveyStatus.ACTIVE: frozenset({SurveyStatus.PAUSED, SurveyStatus.ARCHIVED}),
    SurveyStatus.PAUSED: frozenset({SurveyStatus.ACTIVE, SurveyStatus.ARCHIVED}),
    SurveyStatus.ARCHIVED: frozenset({SurveyStatus.PAUSED}),
}


class SurveyNotSendable(ValidationError):
    """Sending to a survey that is not active: a draft, paused or archived survey.

    A ValidationError, so that a form shows it and the API answers 400 with the message
    (``companies.api_base``) without every caller translating it. ``str()`` is the message.
    """

    def __init__(self, survey: Survey) -> None:
        messages: dict[str, str] = {
            SurveyStatus.DRAFT: _(
                "The survey “%(name)s” is a draft: activate it before sending it."
            ),
            SurveyStatus.PAUSED: _(
                "The survey “%(name)s” is paused: resume it before sending it again."
            ),
            SurveyStatus.ARCHIVED: _(
                "The survey “%(name)s” is archived and can no longer be sent."
            ),
        }
        template = messages.get(survey.status, _("The survey “%(name)s” cannot be sent now."))
        super().__init__(template % {"name": survey.name}, code="survey_not_sendable")
        self.survey = survey
        self.status = survey.status

    def __str__(self) -> str:
        return str(self.message)


def survey_ensure_sendable(*, survey: Survey) -> None:
    """Raise SurveyNotSendable unless the survey is active."""
    if survey.status != SurveyStatus.ACTIVE:
        raise SurveyNotSendable(survey)


def _clean_texts(value: Any) -> dict[str, dict[str, str]]:
    """``{lang: {key: text}}`` with known languages and keys only; blank texts dropped."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            {"texts": _("Wording must be an object of languages, each with its texts.")}
        )
    errors: list[str] = []
    cleaned: dict[str, dict[str, str]] = {}
    for language, texts in value.items():
        if language not in LANGUAGES:
            errors.append(
                _("Unknown language “%(language)s”: use one of %(languages)s.")
                % {"language": language, "languages": ", ".join(LANGUAGES)}
            )
            continue
        if not isinstance(texts, Mapping):
            errors.append(_("%(language)s: give the texts as an object.") % {"language": language})
            continue
        for key, raw in texts.items():
            if key not in EDITABLE_TEXT_KEYS:
                errors.append(
                    _("%(language)s: unknown text “%(key)s” (known: %(keys)s).")
                    % {"language": language, "key": key, "keys": ", ".join(EDITABLE_TEXT_KEYS)}
                )
                continue
            if raw is None:
                continue
            if not isinstance(raw, str):
                errors.append(
                    _("%(language)s.%(key)s: must be text.") % {"language": language, "key": key}
                )
                continue
            text = raw.strip()
            limit = TEXT_MAX_LENGTH.get(key, TEXT_DEFAULT_MAX_LENGTH)
            if len(text) > limit:
                errors.append(
                    _("%(language)s.%(key)s: at most %(limit)d characters.")
                    % {"language": language, "key": key, "limit": limit}
                )
                continue
            if text:
                cleaned.setdefault(language, {})[key] = text
    if errors:
        raise ValidationError({"texts": errors})
    return cleaned


class _Invalid(Exception):
    """One invalid extra question: its message is collected, checking goes on."""


def _clean_language_map(
    value: Any, *, where: str, default_language: str, limit: int
) -> dict[str, str]:
    """``{lang: text}`` for an extra question or a choice; the default language is required.

    A plain string is taken as the text in the survey's default language.
    """
    if isinstance(value, str):
        value = {default_language: value}
    if not isinstance(value, Mapping):
        raise _Invalid(_("%(where)s: give the text per language.") % {"where": where})
    cleaned: dict[str, str] = {}
    for language, raw in value.items():
        if language not in LANGUAGES:
            raise _Invalid(
                _("%(where)s: unknown language “%(language)s”.")
                % {"where": where, "language": language}
            )
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise _Invalid(_("%(where)s: must be text.") % {"where": where})
        text = raw.strip()
        if len(text) > limit:
            raise _Invalid(
                _("%(where)s: at most %(limit)d characters.") % {"where": where, "limit": limit}
            )
        if text:
            cleaned[language] = text
    if default_language not in cleaned:
        raise _Invalid(
            _("%(where)s: write it at least in the survey's default language (%(language)s).")
            % {"where": where, "language": default_language}
        )
    return cleaned


def _clean_extra_question(
    question: Any, *, where: str, default_language: str, seen_ids: set[str]
) -> dict[str, Any]:
    if not isinstance(question, Mapping):
        raise _Invalid(_("%(where)s: must be an object.") % {"where": where})
    unknown = set(question) - {"id", "kind", "text", "choices"}
    if unknown:
        raise _Invalid(
            _("%(where)s: unknown field(s) %(fields)s.")
            % {"where": where, "fields": ", ".join(sorted(map(str, unknown)))}
        )
    question_id = question.get("id") or f"q{secrets.token_hex(4)}"
    if not isinstance(question_id, str) or not _QUESTION_ID_RE.match(question_id):
        raise _Invalid(
            _("%(where)s: the id may hold lower-case letters, digits, - and _ (at most 32).")
            % {"where": where}
        )
    if question_id in seen_ids:
        raise _Invalid(_("%(where)s: the id is used twice.") % {"where": where})
    seen_ids.add(question_id)
    kind = question.get("kind")
    if kind not in EXTRA_QUESTION_KINDS:
        raise _Invalid(_("%(where)s: the kind must be “choice” or “text”.") % {"where": where})
    text = _clean_language_map(
        question.get("text"),
        where=where,
        default_language=default_language,
        limit=EXTRA_TEXT_MAX_LENGTH,
    )
    raw_choices = question.get("choices") or []
    if kind == "text" and raw_choices:
        raise _Invalid(_("%(where)s: a text question has no choices.") % {"where": where})
    if kind == "choice" and (
        not isinstance(raw_choices, list) or not CHOICES_MIN <= len(raw_choices) <= CHOICES_MAX
    ):
        raise _Invalid(
            _("%(where)s: give %(min)d to %(max)d choices.")
            % {"where": where, "min": CHOICES_MIN, "max": CHOICES_MAX}
        )
    choices = [
        _clean_language_map(
            raw,
            where=_("%(where)s, choice %(number)d") % {"where": where, "number": number},
            default_language=default_language,
            limit=CHOICE_MAX_LENGTH,
        )
        for number, raw in enumerate(raw_choices, start=1)
    ]
    return {"id": question_id, "kind": kind, "text": text, "choices": choices}


def _clean_extra_questions(value: Any, *, default_language: str) -> list[dict[str, Any]]:
    """At most five optional questions, each ``choice`` (2–10 choices) or ``text``.

    Normal form: ``{"id", "kind", "text": {lang: str}, "choices": [{lang: str}, …]}``.
    Existing ids are kept (answers refer to them); a question without one gets a new id.
    """
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError({"extra_questions": _("Extra questions must be a list.")})
    if len(value) > EXTRA_QUESTIONS_MAX:
        raise ValidationError(
            {
                "extra_questions": _("At most %(max)d extra questions.")
                % {"max": EXTRA_QUESTIONS_MAX}
            }
        )
    errors: list[str] = []
    seen_ids: set[str] = set()
    cleaned = []
    for number, question in enumerate(value, start=1):
        try:
            cleaned.append(
                _clean_extra_question(
                    question,
                    where=_("Question %(number)d") % {"number": number},
                    default_language=default_language,
                    seen_ids=seen_ids,
                )
            )
        except _Invalid as exc:
            errors.append(str(exc))
    if errors:
        raise ValidationError({"extra_questions": errors})
    return cleaned


def _is_https(url: str) -> bool:
    try:
        _https_only(url)
    except ValidationError:
        return False
    return True


def _clean_survey_fields(fields: dict[str, Any], *, default_language: str) -> dict[str, Any]:
    """Normalise and check what the model's own validators do not cover."""
    errors: dict[str, list[str]] = {}
    cleaned = dict(fields)

    def collect(exc: ValidationError) -> None:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)

    if "name" in cleaned:
        cleaned["name"] = str(cleaned["name"] or "").strip()
        if not cleaned["name"]:
            errors["name"] = [_("Give the survey a name.")]
    if "texts" in cleaned:
        try:
            cleaned["texts"] = _clean_texts(cleaned["texts"])
        except ValidationError as exc:
            collect(exc)
    if "extra_questions" in cleaned:
        try:
            cleaned["extra_questions"] = _clean_extra_questions(
                cleaned["extra_questions"], default_language=default_language
            )
        except ValidationError as exc:
            collect(exc)
    if "accent_color" in cleaned:
        color = str(cleaned["accent_color"] or "").strip()
        if not _COLOR_RE.match(color):
            errors["accent_color"] = [_("Use a colour written like #4f46e5.")]
        cleaned["accent_color"] = color.lower()
    for name in _HTTPS_FIELDS.keys() & cleaned.keys():
        cleaned[name] = str(cleaned[name] or "").strip()
        if cleaned[name] and not _is_https(cleaned[name]):
            errors[name] = [str(_HTTPS_FIELDS[name])]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _survey_candidate(survey: Survey, fields: dict[str, Any]) -> Survey:
    """Validate ``fields`` on a copy of ``survey``; the original is untouched on error."""
    default_language = str(fields.get("default_language") or survey.default_language)
    if "default_language" in fields and "extra_questions" not in fields:
        # The extra questions must be written in the new default language too.
        fields = {**fields, "extra_questions": survey.extra_questions}
    fields = _clean_survey_fields(fields, default_language=default_language)
    candidate = copy.copy(survey)
    for name, value in fields.items():
        setattr(candidate, name, value)
    # eNPS is anonymous, always: respondents' identities are never shown for it.
    candidate.anonymous = candidate.kind == SurveyKind.ENPS
    try:
        candidate.full_clean(
            exclude=["company", "created_by"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        # Our own checks ran first and know better (e.g. "name" gets a clearer message).
        raise ValidationError(exc.message_dict) from None
    return candidate


def survey_create(
    *,
    company: Company,
    name: str,
    kind: str = SurveyKind.NPS,
    created_by: User | None = None,
    **fields: Any,
) -> Survey:
    """Create a draft survey. Raises ValidationError keyed by field; nothing saved then.

    ``fields`` are any of SURVEY_EDITABLE_FIELDS; ``texts`` and ``extra_questions`` are
    normalised (see the model's docstring for their shapes).
    """
    unknown = set(fields) - SURVEY_EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"survey_create() got unknown fields: {', '.join(sorted(unknown))}")
    survey = _survey_candidate(
        Survey(company=company, created_by=created_by), {"name": name, "kind": kind, **fields}
    )
    survey.status = SurveyStatus.DRAFT
    survey.save()
    return survey


def survey_update(*, company: Company, survey: Survey, **fields: Any) -> Survey:
    """Change a survey's settings: all the given fields or none.

    The kind (and with it anonymity) may change only while the survey is a draft: turning an
    eNPS survey that has answers into a customer survey would reveal who answered.
    """
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    unknown = set(fields) - SURVEY_EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"survey_update() got unknown fields: {', '.join(sorted(unknown))}")
    if "kind" in fields and fields["kind"] != survey.kind and survey.status != SurveyStatus.DRAFT:
        raise ValidationError(
            {"kind": _("The kind of a survey can only change while it is a draft.")}
        )
    candidate = _survey_candidate(survey, fields)
    changed = {*fields, "extra_questions", "anonymous"}
    update_fields = [*sorted(changed), "updated_at"]
    candidate.save(update_fields=update_fields)
    for name in update_fields:
        setattr(survey, name, getattr(candidate, name))
    return survey


def survey_set_status(*, company: Company, survey: Survey, status: str) -> Survey:
    """Move a survey to ``status`` along STATUS_TRANSITIONS (the same status: no change)."""
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    if status not in SurveyStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    if status == survey.status:
        return survey
    if status not in STATUS_TRANSITIONS[survey.status]:
        raise ValidationError(
            {
                "status": _("A survey that is %(current)s cannot become %(new)s.")
                % {
                    "current": SurveyStatus(survey.status).label.lower(),
                    "new": SurveyStatus(status).label.lower(),
                }
            }
        )
    survey.status = status
    survey.save(update_fields=["status", "updated_at"])
    return survey


def survey_delete(*, company: Company, survey: Survey) -> bool:
    """Delete a survey that was never used; archive one that was. True when deleted.

    A survey with invitations or responses is history that reports and contacts' timelines
    point at, so it is archived instead (it stops sending and leaves the lists).
    """
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    with transaction.atomic():
        locked = Survey.objects.for_company(company).select_for_update().get(pk=survey.pk)
        used = (
            locked.invitations.filter(company=company).exists()
            or locked.responses.filter(company=company).exists()
        )
        if not used:
            locked.delete()
            return True
        if locked.status != SurveyStatus.ARCHIVED:
            locked.status = SurveyStatus.ARCHIVED
            locked.save(update_fields=["status", "updated_at"])
    survey.status = locked.status
    return False


# --- Sending ----------------------------------------------------------------------------------
#
# The way of an invitation: ``scheduled`` (waits in the database for its time) → ``queued``
# (the dispatcher handed it to a send task) → ``sending`` (a send task claimed it with a
# conditional UPDATE) → ``sent`` / ``failed`` / ``suppressed``. Only the task that moved a row
# from queued to sending may call the provider for it, so a redelivered task, a retried one or
# a second worker racing on the same ids never sends twice.

logger = logging.getLogger(__name__)

# Contacts per expansion chunk: one transaction and a constant number of queries each.
EXPAND_CHUNK_SIZE = 1000
# Invitations per send task. The post office splits further to the provider's per-call cap;
# 500 is the largest cap among the supported providers (Postmark), so one task is at most one
# provider call for most of them.
SEND_BATCH_SIZE = 500
# SMS/WhatsApp invitations per send task: one message per provider call at the sender's rate
# (1/s for a long code), so a task stays well inside the time limit.
SMS_SEND_BATCH_SIZE = 20
# Due invitations moved to queued per dispatcher transaction; a run repeats until drained.
DISPATCH_BATCH_SIZE = 5000
DISPATCH_MAX_BATCHES = 100
# Due campaigns started per dispatcher run.
DISPATCH_CAMPAIGNS = 100
# Reminders enqueued per survey per run.
REMINDER_BATCH_SIZE = 5000
MAX_TRIGGER_DELAY = timedelta(days=90)
MAX_SCHEDULE_AHEAD = timedelta(days=366)
# Invitations that count for the throttle window (anything not refused or dropped).
THROTTLE_STATUSES = (
    InvitationStatus.SCHEDULED,
    InvitationStatus.QUEUED,
    InvitationStatus.SENDING,
    InvitationStatus.SENT,
)
SURVEY_LANGUAGE_CODES = frozenset(code for code, _label in LANGUAGE_CHOICES)
# The stale sweep (invitations_sweep_stale). A send message is normally taken within seconds
# and a retried one waits at most 10 minutes (tasks.SEND_BACKOFF_MAX): a row queued for
# longer lost its message (broker restart, purge). Enqueuing it again is safe, the send task
# claims before sending; during a long backlog the extra message just finds nothing to claim.
STALE_QUEUED_AFTER = timedelta(minutes=15)
# A send task is killed at the hard time limit (5 min) and an unacknowledged message comes
# back after the broker's visibility timeout (20 min): a row still "sending" after 30 minutes
# belongs to a worker that died during the provider call. Its outcome is read from the
# delivery ledger; it is never sent again (the provider may already have taken it).
STALE_SENDING_AFTER = timedelta(minutes=30)
# Rows of each kind resolved per sweep run (every dispatcher run, 15 s): bounded work.
STALE_SWEEP_BATCH_SIZE = 1000
_SENT_DELIVERY_STATUSES = frozenset({"sent", "delivered", "opened", "clicked"})


def answer_url(invitation: Invitation, score: int | None = None) -> str:
    """The absolute answer link of ``invitation`` (with a score: the link of that button).

    The token is derived again from the stored nonce; only its hash is in the database.
    """
    url = _answer_url_maker()(token_for(invitation.token_nonce))
    return url if score is None else score_link(url, score)


def answer_link_for_token(token: str) -> str:
    """The absolute answer link of a token (previews use a sample token)."""
    return _answer_url_maker()(token)


def _whatsapp_variables(*, company: Company, invitation: Invitation, link: str) -> dict[str, str]:
    """The template's numbered variables, as the company mapped them (default: 1 name,
    2 company, 3 link). Nobody is named in an anonymous survey."""
    from companies.services import WHATSAPP_DEFAULT_VARIABLES

    name = "" if invitation.survey.anonymous else invitation.contact.name.strip()
    values = {
        "name": name,
        "first_name": name.split(" ", 1)[0] if name else "",
        "company": company.name,
        "survey": invitation.survey.name,
        "link": link,
    }
    mapping = company.whatsapp_variables or WHATSAPP_DEFAULT_VARIABLES
    return {number: values.get(key, "") for number, key in mapping.items()}


def sms_answer_url(invitation: Invitation) -> str:
    """The answer link a text message carries (the short token: see ``sms_token_for``)."""
    return _answer_url_maker()(sms_token_for(invitation))


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


def _answer_url_maker() -> Callable[[str], str]:
    """token → absolute answer link, with one ``reverse()`` per maker instead of one per
    link (a send builds thousands)."""
    before, after = reverse("answer", kwargs={"token": "TOKEN"}).split("TOKEN")
    prefix = settings.SITE_URL + before
    return lambda token: f"{prefix}{token}{after}"


def _invitation_new(
    *,
    company: Company,
    survey: Survey,
    contact: Contact,
    scheduled_for: datetime,
    campaign: Campaign | None = None,
    language: str | None = None,
    properties: dict[str, Any] | None = None,
    channel: str = Channel.EMAIL,
) -> Invitation:
    """An unsaved scheduled invitation with a fresh answer-link token."""
    nonce = new_nonce()
    return Invitation(
        company=company,
        survey=survey,
        contact=contact,
        campaign=campaign,
        channel=channel,
        language=language or contact.language or survey.default_language,
        token_nonce=nonce,
        token_hash=token_hash(token_for(nonce)),
        short_token_hash=(token_hash(short_token_for(nonce)) if channel in SMS_CHANNELS else None),
        status=InvitationStatus.SCHEDULED,
        scheduled_for=scheduled_for,
        properties=properties or {},
        # Counted again from the actual send (invitations_send); this bounds a link that is
        # never sent.
        expires_at=scheduled_for + timedelta(days=survey.link_valid_days),
    )


def _sampled_in(*, campaign_public_id: str, contact_public_id: str, percent: int) -> bool:
    """Deterministic sampling: the same campaign and contact always give the same answer."""
    if percent >= 100:
        return True
    digest = hashlib.sha256(f"{campaign_public_id}:{contact_public_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def _throttled_contact_ids(
    *, company: Company, survey: Survey, contact_ids: Iterable[int], at: datetime
) -> set[int]:
    """Contacts (of ``contact_ids``) already surveyed by a survey of the same kind within the
    survey's throttle window before ``at``: sent then, or waiting to be sent. ONE query."""
    if not survey.throttle_days:
        return set()
    since = at - timedelta(days=survey.throttle_days)
    return set(
        Invitation.objects.for_company(company)
        .filter(
            contact_id__in=list(contact_ids),
            survey__kind=survey.kind,
            status__in=THROTTLE_STATUSES,
        )
        .filter(Q(sent_at__gte=since) | Q(sent_at__isnull=True, scheduled_for__gte=since))
        .values_list("contact_id", flat=True)
    )


# Channels and the Contact field each one sends to.
CHANNEL_ADDRESS_FIELD: dict[str, str] = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.WHATSAPP: "phone",
}
SMS_CHANNELS: frozenset[str] = frozenset({Channel.SMS, Channel.WHATSAPP})


# A contact property naming the channel a contact prefers (campaigns on "preferred").
PREFERRED_CHANNEL_PROPERTY = "preferred_channel"


def channel_clean(channel: object, *, preferred: bool = False) -> str:
    """A known channel ("preferred" too, for campaigns), else a ValidationError."""
    if channel in CHANNEL_ADDRESS_FIELD or (preferred and channel == CampaignChannel.PREFERRED):
        return str(channel)
    raise ValidationError({"channel": [_("Use email, sms, whatsapp or preferred.")]})


def contact_channel(contact: Contact) -> str:
    """The channel a "preferred" campaign uses for ``contact``: its ``preferred_channel``
    property when it has that address, else email when it has one, else SMS."""
    wanted = (contact.properties or {}).get(PREFERRED_CHANNEL_PROPERTY)
    if isinstance(wanted, str):
        wanted = wanted.strip().lower()
        if wanted in CHANNEL_ADDRESS_FIELD and getattr(contact, CHANNEL_ADDRESS_FIELD[wanted]):
            return wanted
    return Channel.EMAIL if contact.email else Channel.SMS


def _contact_address(contact: Contact, channel: str) -> str | None:
    """The contact's normalised address on ``channel`` (None: the contact has none)."""
    from notifications.services import normalize_address

    value = getattr(contact, CHANNEL_ADDRESS_FIELD[channel])
    return normalize_address(channel, value) if value else None


def _suppressed_on(*, company: Company, channel: str, addresses: Iterable[str]) -> set[str]:
    from notifications.selectors import suppressed_addresses

    return set(suppressed_addresses(company=company, channel=channel, addresses=list(addresses)))


def audience_clean(audience: object) -> dict[str, Any]:
    """``surveys.selectors.audience_validate`` with its errors on the ``audience`` field."""
    from surveys.selectors import audience_validate

    try:
        return audience_validate(audience)
    except ValidationError as exc:
        raise ValidationError({"audience": exc.messages}) from exc


def _survey_check_sendable(survey: Survey) -> None:
    """``survey_ensure_sendable`` as a ValidationError on the ``survey`` field."""
    try:
        survey_ensure_sendable(survey=survey)
    except SurveyNotSendable as exc:
        raise ValidationError({"survey": [str(exc)]}) from exc


def campaign_create(
    *,
    company: Company,
    survey: Survey,
    audience: dict[str, Any],
    scheduled_for: datetime | None = None,
    created_by: User | None = None,
    name: str = "",
    channel: str = Channel.EMAIL,
) -> Campaign:
    """Schedule a send of ``survey`` to ``audience`` now (``scheduled_for`` None) or later,
    on ``channel`` (email, sms, whatsapp: contacts without that address are left out).

    A campaign due now starts expanding straight away (after commit); a later one is started
    by the dispatcher when due. Refuses a survey that cannot be sent (draft, paused,
    archived) with a ``ValidationError`` on ``survey``.
    """
    if survey.company_id != company.pk:
        raise ValueError("survey belongs to another company")
    _survey_check_sendable(survey)
    channel = channel_clean(channel, preferred=True)
    cleaned_audience = audience_clean(audience)
    now = timezone.now()
    when = scheduled_for or now
    if when > now + MAX_SCHEDULE_AHEAD:
        raise ValidationError({"scheduled_for": [_("At most a year ahead.")]})
    if len(name) > 120:
        raise ValidationError({"name": [_("At most 120 characters.")]})
    due = when <= now
    with transaction.atomic():
        campaign = Campaign.objects.create(
            company=company,
            survey=survey,
            name=name.strip(),
            channel=channel,
            audience=cleaned_audience,
            scheduled_for=max(when, now) if due else when,
            status=CampaignStatus.EXPANDING if due else CampaignStatus.SCHEDULED,
            created_by=created_by,
        )
        if due:
            _enqueue_expand(company_id=company.pk, campaign_id=campaign.pk)
    return campaign


def _enqueue_expand(*, company_id: int, campaign_id: int) -> None:
    from surveys.tasks import expand_campaign

    expand_campaign.delay_on_commit(company_id, campaign_id)


def campaign_expand(*, company: Company, campaign_id: int) -> Campaign:
    """Turn the campaign's audience into scheduled invitations, chunk by chunk.

    Each chunk (``EXPAND_CHUNK_SIZE`` contacts in id order, resuming after
    ``campaign.expanded_through``) is one transaction with a constant number of queries:
    the contacts, their suppressed addresses, the throttled ones, one bulk insert of
    invitations and one of their events, one counter update. Every targeted contact lands in
    exactly one bucket: suppressed (this count includes contacts without an email address,
    who cannot get an email), throttled, sampled out, or invited. The campaign row is locked
    per chunk, so two runs of the same expansion (a redelivered task) take turns and never
    invite a contact twice.
    """
    while True:
        campaign, finished = _campaign_expand_chunk(company=company, campaign_id=campaign_id)
        if finished:
            return campaign


def _campaign_expand_chunk(*, company: Company, campaign_id: int) -> tuple[Campaign, bool]:
    from surveys.selectors import contacts_matching

    with transaction.atomic():
        campaign = Campaign.objects.for_company(company).select_for_update().get(pk=campaign_id)
        if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.EXPANDING):
            return campaign, True
        survey = Survey.objects.for_company(company).get(pk=campaign.survey_id)
        contacts = list(
            contacts_matching(company=company, audience=campaign.audience)
            .filter(pk__gt=campaign.expanded_through)
            .order_by("pk")
            .only("pk", "public_id", "email", "phone", "language", "properties")[:EXPAND_CHUNK_SIZE]
        )
        if contacts:
            counts = _expand_contacts(
                company=company, campaign=campaign, survey=survey, contacts=contacts
            )
            Campaign.objects.for_company(company).filter(pk=campaign.pk).update(
                expanded_through=contacts[-1].pk,
                targeted=F("targeted") + len(contacts),
                suppressed=F("suppressed") + counts["suppressed"],
                throttled=F("throttled") + counts["throttled"],
                sampled_out=F("sampled_out") + counts["sampled_out"],
                status=CampaignStatus.EXPANDING,
            )
        finished = len(contacts) < EXPAND_CHUNK_SIZE
        if finished:
            Campaign.objects.for_company(company).filter(pk=campaign.pk).update(
                status=CampaignStatus.SENDING
            )
            # Whatever is due goes out now rather than at the dispatcher's next tick.
            from surveys.tasks import dispatch_due

            dispatch_due.delay_on_commit()
        campaign.refresh_from_db()
    if finished:
        campaigns_mark_done(company=company, campaign_ids=[campaign.pk])
        campaign.refresh_from_db()
    return campaign, finished


def _expand_contacts(
    *, company: Company, campaign: Campaign, survey: Survey, contacts: Sequence[Contact]
) -> dict[str, int]:
    """Invite one chunk of contacts; returns the counts of those left out, by reason."""
    channels = {
        contact.pk: contact_channel(contact)
        if campaign.channel == CampaignChannel.PREFERRED
        else campaign.channel
        for contact in contacts
    }
    addresses: dict[int, str] = {}
    for contact in contacts:
        address = _contact_address(contact, channels[contact.pk])
        if address:
            addresses[contact.pk] = address
    # Suppressed: (channel, address) pairs, one query per channel in use.
    suppressed: set[tuple[str, str]] = set()
    for channel in set(channels.values()):
        suppressed.update(
            (channel, address)
            for address in _suppressed_on(
                company=company,
                channel=channel,
                addresses=[a for pk, a in addresses.items() if channels[pk] == channel],
            )
        )
    throttled = _throttled_contact_ids(
        company=company,
        survey=survey,
        contact_ids=[c.pk for c in contacts if c.pk in addresses],
        at=campaign.scheduled_for,
    )
    counts = {"suppressed": 0, "throttled": 0, "sampled_out": 0}
    invitations = []
    for contact in contacts:
        if (
            contact.pk not in addresses
            or (channels[contact.pk], addresses[contact.pk]) in suppressed
        ):
            counts["suppressed"] += 1
        elif contact.pk in throttled:
            counts["throttled"] += 1
        elif not _sampled_in(
            campaign_public_id=campaign.public_id,
            contact_public_id=contact.public_id,
            percent=survey.sample_percent,
        ):
            counts["sampled_out"] += 1
        else:
            invitations.append(
                _invitation_new(
                    company=company,
                    survey=survey,
                    contact=contact,
                    scheduled_for=campaign.scheduled_for,
                    campaign=campaign,
                    channel=channels[contact.pk],
                )
            )
    created = Invitation.objects.bulk_create(invitations)
    _events_add(company, [(invitation.pk, "scheduled", "") for invitation in created])
    return counts


def _events_add(company: Company, events: Sequence[tuple[int, str, str]]) -> None:
    """Add timeline events ``(invitation id, event, detail)``, all occurring now.

    On PostgreSQL one ``INSERT … SELECT … FROM unnest(ids)`` per distinct (event, detail),
    usually one: ``bulk_create`` spends ~0.1 ms of Python per row, which was a third of a
    campaign's expansion. Elsewhere ``bulk_create``.
    """
    if not events:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        InvitationEvent.objects.bulk_create(
            InvitationEvent(
                company=company, invitation_id=pk, event=event, detail=detail, occurred_at=now
            )
            for pk, event, detail in events
        )
        return
    groups: dict[tuple[str, str], list[int]] = {}
    for pk, event, detail in events:
        groups.setdefault((event, detail), []).append(pk)
    meta = InvitationEvent._meta
    quote = connection.ops.quote_name
    fields = [
        meta.get_field(n) for n in ("company", "invitation", "event", "detail", "occurred_at")
    ]
    columns = ", ".join(quote(f.column) for f in fields if isinstance(f, models.Field))
    assert columns.count(",") == len(fields) - 1
    # Only quoted model metadata is formatted in: every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
        " SELECT %s, id, %s, %s, %s FROM unnest(%s::bigint[]) AS id"
    )
    with connection.cursor() as cursor:
        for (event, detail), ids in groups.items():
            cursor.execute(sql, [company.pk, event, detail, now, ids])


def campaigns_mark_done(*, company: Company, campaign_ids: Iterable[int]) -> int:
    """Campaigns in ``sending`` whose invitations have all left the pipeline become done."""
    pending = Invitation.objects.for_company(company).filter(
        campaign=OuterRef("pk"),
        status__in=(
            InvitationStatus.SCHEDULED,
            InvitationStatus.QUEUED,
            InvitationStatus.SENDING,
        ),
    )
    return (
        Campaign.objects.for_company(company)
        .filter(pk__in=list(campaign_ids), status=CampaignStatus.SENDING)
        .exclude(Exists(pending))
        .update(status=CampaignStatus.DONE, finished_at=timezone.now())
    )


def campaign_cancel(*, company: Company, campaign: Campaign) -> int:
    """Stop a campaign: its invitations not yet handed to a send task are cancelled."""
    with transaction.atomic():
        Campaign.objects.for_company(company).filter(
            pk=campaign.pk,
            status__in=(CampaignStatus.SCHEDULED, CampaignStatus.EXPANDING, CampaignStatus.SENDING),
        ).update(status=CampaignStatus.CANCELLED, finished_at=timezone.now())
        return (
            Invitation.objects.for_company(company)
            .filter(campaign=campaign, status=InvitationStatus.SCHEDULED)
            .update(status=InvitationStatus.CANCELLED)
        )


def invitations_dispatch_due(
    *, now: datetime | None = None, batch_size: int = DISPATCH_BATCH_SIZE
) -> int:
    """The periodic dispatcher (a system job across companies): start due campaigns, hand
    due invitations to send tasks. Returns how many invitations were queued.

    Due invitations (scheduled, time come, survey active: a paused survey's invitations
    wait) are locked with SKIP LOCKED in the partial index's order, moved to ``queued`` with
    a conditional UPDATE, and one send task per company and ``SEND_BATCH_SIZE`` ids is
    enqueued after the commit. Concurrent dispatchers skip each other's rows.
    """
    from surveys.tasks import send_invitations

    now = now or timezone.now()
    _campaigns_start_due(now=now)
    total = 0
    for _batch in range(DISPATCH_MAX_BATCHES):
        with transaction.atomic():
            rows = list(
                Invitation.objects.unscoped(reason="the dispatcher serves every company")
                .select_for_update(skip_locked=True, of=("self",))
                .filter(
                    status=InvitationStatus.SCHEDULED,
                    scheduled_for__lte=now,
                    survey__status=SurveyStatus.ACTIVE,
                )
                .order_by("scheduled_for", "pk")
                .values_list("pk", "company_id", "channel")[:batch_size]
            )
            if not rows:
                break
            # updated_at is stamped by hand: update() skips auto_now, and the stale sweep
            # measures how long a row has been queued from it.
            Invitation.objects.unscoped(reason="rows locked just above").filter(
                pk__in=[pk for pk, _company, _channel in rows], status=InvitationStatus.SCHEDULED
            ).update(status=InvitationStatus.QUEUED, updated_at=timezone.now())
            # Email and text messages go in separate tasks of their own sizes.
            by_company: dict[tuple[int, bool], list[int]] = {}
            for pk, company_id, channel in rows:
                by_company.setdefault((company_id, channel in SMS_CHANNELS), []).append(pk)
            for (company_id, texts), ids in by_company.items():
                size = SMS_SEND_BATCH_SIZE if texts else SEND_BATCH_SIZE
                for start in range(0, len(ids), size):
                    send_invitations.delay_on_commit(company_id, ids[start : start + size])
            total += len(rows)
        if len(rows) < batch_size:
            break
    return total


def _campaigns_start_due(*, now: datetime) -> None:
    """Claim due scheduled campaigns (scheduled → expanding) and enqueue their expansion."""
    due = list(
        Campaign.objects.unscoped(reason="the dispatcher serves every company")
        .filter(
            status=CampaignStatus.SCHEDULED,
            scheduled_for__lte=now,
            survey__status=SurveyStatus.ACTIVE,
        )
        .order_by("scheduled_for")
        .values_list("pk", "company_id")[:DISPATCH_CAMPAIGNS]
    )
    for pk, company_id in due:
        with transaction.atomic():
            claimed = (
                Campaign.objects.unscoped(reason="claiming one due campaign")
                .filter(pk=pk, status=CampaignStatus.SCHEDULED)
                .update(status=CampaignStatus.EXPANDING)
            )
            if claimed:
                _enqueue_expand(company_id=company_id, campaign_id=pk)


@dataclass
class SendOutcome:
    """What one ``invitations_send`` call did, by invitation status."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0


def _claim(*, company: Company, invitation_ids: Sequence[int], reminder: bool) -> list[int]:
    """Claim the rows this call may send, in pk order; the rest belong to someone else.

    First sends: ``queued`` → ``sending`` (attempts + 1). Reminders: ``reminder_sent_at``
    from NULL to now, only for sent, unanswered, unexpired invitations.
    """
    now = timezone.now()
    with transaction.atomic():
        candidates = Invitation.objects.for_company(company).filter(pk__in=list(invitation_ids))
        if reminder:
            candidates = candidates.filter(
                status=InvitationStatus.SENT,
                answered_at__isnull=True,
                reminder_sent_at__isnull=True,
            ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        else:
            candidates = candidates.filter(status=InvitationStatus.QUEUED)
        claimed = list(
            candidates.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not claimed:
            return []
        rows = Invitation.objects.for_company(company).filter(pk__in=claimed)
        if reminder:
            rows.filter(reminder_sent_at__isnull=True).update(reminder_sent_at=now)
        else:
            # updated_at by hand (update() skips auto_now): the stale sweep times the claim.
            rows.filter(status=InvitationStatus.QUEUED).update(
                status=InvitationStatus.SENDING, attempts=F("attempts") + 1, updated_at=now
            )
    return claimed


def _score_placeholder(score: int) -> str:
    from notifications.email import merge_field

    return score_link(merge_field("answer_url"), score)


def _invitation_merge(
    invitation: Invitation,
    *,
    company: Company,
    with_name: bool,
    answer_url_for: Callable[[str], str],
) -> dict[str, str]:
    """The per-recipient values of one invitation email (see ``merge_field``)."""
    from notifications.unsubscribe import unsubscribe_url

    contact = invitation.contact
    assert contact.email
    values = {
        "answer_url": answer_url_for(token_for(invitation.token_nonce)),
        "unsubscribe_url": unsubscribe_url(
            company=company,
            channel=Channel.EMAIL,
            address=contact.email,
            language=invitation.language,
        ),
    }
    if with_name:
        values["name"] = contact.name.strip()
    return values


def invitations_send(
    *, company: Company, invitation_ids: Sequence[int], reminder: bool = False
) -> SendOutcome:
    """Send the given invitations (or their one reminder) that this call can claim.

    Claim first (see ``_claim``): only claimed rows are rendered and handed to the post
    office, whose delivery ledger gets one row per message before the provider is called.
    The email is rendered once per survey, language and greeting form with merge fields for
    the per-recipient links, so the post office can send it as provider batches.
    Per-recipient results: sent, failed (with the provider's reason: a permanent error is
    never retried) or suppressed.

    On ``notifications.email.TransientSendError`` the rows the provider did take are
    recorded, the undecided ones go back to ``queued`` keeping their Delivery row (the retry
    reuses it, so the post office never sends one twice; a reminder's claim is undone
    instead) and the error is re-raised for the task to retry later with backoff.
    Must not run inside a transaction: the ledger rows are committed before the provider
    call.
    """
    from notifications.email import TransientSendError

    claimed = _claim(company=company, invitation_ids=invitation_ids, reminder=reminder)
    outcome = SendOutcome(claimed=len(claimed))
    if not claimed:
        return outcome
    invitations = list(
        Invitation.objects.for_company(company)
        .filter(pk__in=claimed)
        .select_related("survey", "contact")
        .order_by("pk")
    )
    now = timezone.now()
    texts = [i for i in invitations if i.channel in SMS_CHANNELS]
    emails = [i for i in invitations if i.channel not in SMS_CHANNELS]
    interrupted: TransientSendError | None = None
    # Each channel's transient error is kept until the other channel went out: the retry
    # claims only what is back in queued, so nothing is sent twice.
    if texts:
        try:
            _send_texts(
                company=company, invitations=texts, reminder=reminder, now=now, outcome=outcome
            )
        except TransientSendError as err:
            interrupted = err
    if emails:
        try:
            _send_emails(
                company=company, invitations=emails, reminder=reminder, now=now, outcome=outcome
            )
        except TransientSendError as err:
            interrupted = interrupted or err
    if not reminder:
        campaigns_mark_done(
            company=company,
            campaign_ids={i.campaign_id for i in invitations if i.campaign_id is not None},
        )
    if interrupted is not None:
        raise interrupted
    return outcome


def _send_emails(
    *,
    company: Company,
    invitations: Sequence[Invitation],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """The email part of ``invitations_send`` (claimed rows)."""
    from notifications.email import OutgoingEmail, email_send, merge_field
    from surveys.emails import RenderedEmail, build_invitation_email

    message_kind = "reminder" if reminder else "invitation"
    answer_url_for = _answer_url_maker()
    rendered_by_form: dict[tuple[int, str, bool], RenderedEmail] = {}
    to_send: list[Invitation] = []
    emails: list[OutgoingEmail] = []
    unreachable: list[Invitation] = []
    for invitation in invitations:
        contact = invitation.contact
        if not contact.email:
            unreachable.append(invitation)
            continue
        with_name = bool(contact.name.strip())
        form = (invitation.survey_id, invitation.language, with_name)
        rendered = rendered_by_form.get(form)
        if rendered is None:
            rendered = rendered_by_form[form] = build_invitation_email(
                survey=invitation.survey,
                company=company,
                language=invitation.language,
                contact_name=merge_field("name") if with_name else "",
                answer_url=merge_field("answer_url"),
                score_url=_score_placeholder,
                unsubscribe_url=merge_field("unsubscribe_url"),
                reminder=reminder,
            )
        emails.append(
            OutgoingEmail(
                to=contact.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                headers={
                    "List-Unsubscribe": f"<{merge_field('unsubscribe_url')}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
                reply_to=company.reply_to or None,
                from_name=company.sender_name or company.name,
                metadata={"invitation": invitation.public_id, "message": message_kind},
                merge=_invitation_merge(
                    invitation,
                    company=company,
                    with_name=with_name,
                    answer_url_for=answer_url_for,
                ),
                # A retry after a transient error reuses the row the first attempt wrote.
                delivery_id=None if reminder else invitation.delivery_id,
            )
        )
        to_send.append(invitation)
    _hand_over(
        company=company,
        to_send=to_send,
        unreachable=unreachable,
        send=lambda: email_send(company=company, emails=emails) if emails else [],
        reminder=reminder,
        now=now,
        outcome=outcome,
    )


def _send_texts(
    *,
    company: Company,
    invitations: Sequence[Invitation],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """The SMS/WhatsApp part of ``invitations_send`` (claimed rows).

    A recipient inside quiet hours (their local time) is not sent to: the row goes back to
    ``scheduled`` for the moment the window opens (the dispatcher picks it up then; no
    Celery ETA), its claim's attempt given back. One message per invitation, each with its
    own answer link; the post office's ledger and retry rules are those of email.
    """
    from notifications.sms import OutgoingSms, sms_send
    from surveys.sms import quiet_hours_until, sms_invitation_text, whatsapp_template

    answer_url_for = _answer_url_maker()
    to_send: list[Invitation] = []
    messages: list[OutgoingSms] = []
    unreachable: list[Invitation] = []
    waiting: list[tuple[Invitation, datetime]] = []
    for invitation in invitations:
        contact = invitation.contact
        if not contact.phone:
            unreachable.append(invitation)
            continue
        opens = quiet_hours_until(contact=contact, company=company, now=now)
        if opens is not None:
            waiting.append((invitation, opens))
            continue
        link = answer_url_for(sms_token_for(invitation))
        body = sms_invitation_text(
            survey=invitation.survey,
            company=company,
            language=invitation.language,
            name=contact.name,
            link=link,
        )
        template = whatsapp_template(
            company=company, survey=invitation.survey, language=invitation.language
        )
        messages.append(
            OutgoingSms(
                to=contact.phone,
                body=body,
                channel=invitation.channel,
                # WhatsApp: a business-initiated message must be an approved template.
                content_sid=template if invitation.channel == Channel.WHATSAPP else "",
                content_variables=(
                    _whatsapp_variables(company=company, invitation=invitation, link=link)
                    if template and invitation.channel == Channel.WHATSAPP
                    else {}
                ),
                metadata={
                    "invitation": invitation.public_id,
                    "message": "reminder" if reminder else "invitation",
                },
                delivery_id=None if reminder else invitation.delivery_id,
            )
        )
        to_send.append(invitation)
    _wait_for_window(company=company, waiting=waiting, reminder=reminder)
    _hand_over(
        company=company,
        to_send=to_send,
        unreachable=unreachable,
        send=lambda: sms_send(company=company, messages=messages) if messages else [],
        reminder=reminder,
        now=now,
        outcome=outcome,
    )


def _hand_over(
    *,
    company: Company,
    to_send: Sequence[Invitation],
    unreachable: Sequence[Invitation],
    send: Callable[[], Sequence[Any]],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """The end of a send, whatever the channel: the unreachable fail, ``send`` hands
    ``to_send`` to the post office (deliveries in the same order), and each result is
    recorded; a transient error puts the undecided rows back and is raised for the retry."""
    from notifications.email import TransientSendError

    outcome.failed += _record_unreachable(
        company=company, invitations=unreachable, reminder=reminder
    )
    try:
        deliveries = send()
    except TransientSendError as err:
        _send_interrupted(
            company=company,
            invitations=to_send,
            deliveries=err.deliveries,
            reminder=reminder,
            now=now,
        )
        raise
    results = list(zip(to_send, deliveries, strict=True))
    _record_results(company=company, results=results, reminder=reminder, now=now, outcome=outcome)


def _wait_for_window(
    *, company: Company, waiting: Sequence[tuple[Invitation, datetime]], reminder: bool
) -> None:
    """Claimed SMS invitations inside quiet hours wait in the database for their window."""
    if not waiting:
        return
    rows = Invitation.objects.for_company(company)
    for invitation, opens in waiting:
        if reminder:
            # The reminder dispatcher finds it again once the claim is undone.
            rows.filter(pk=invitation.pk).update(reminder_sent_at=None)
        else:
            rows.filter(pk=invitation.pk, status=InvitationStatus.SENDING).update(
                status=InvitationStatus.SCHEDULED,
                scheduled_for=opens,
                attempts=F("attempts") - 1,
                updated_at=timezone.now(),
            )
    _events_add(
        company,
        [
            (invitation.pk, "waiting", f"quiet hours: sent after {opens.isoformat()}")
            for invitation, opens in waiting
            if not reminder
        ],
    )


def _record_unreachable(
    *, company: Company, invitations: Sequence[Invitation], reminder: bool
) -> int:
    """Claimed invitations whose contact has no address on their channel (any more): failed."""
    if not invitations:
        return 0
    if invitations[0].channel in SMS_CHANNELS:
        reason = _("The contact has no phone number.")
    else:
        reason = _("The contact has no email address.")
    if not reminder:
        Invitation.objects.for_company(company).filter(pk__in=[i.pk for i in invitations]).update(
            status=InvitationStatus.FAILED, failed_reason=reason
        )
    event = "reminder_failed" if reminder else "failed"
    _events_add(company, [(i.pk, event, reason) for i in invitations])
    return len(invitations)


def _record_results(
    *,
    company: Company,
    results: Sequence[tuple[Invitation, Any]],
    reminder: bool,
    now: datetime,
    outcome: SendOutcome,
) -> None:
    """Write each invitation's result (one bulk update) and its timeline event (one insert).

    A delivery still ``queued``/``sending`` here was left by a killed worker (the post office
    returns such a row untouched): its outcome is unknown, and it is not sent again.
    """
    events: list[tuple[int, str, str]] = []
    changed = []
    for invitation, delivery in results:
        status = delivery.status
        if status in _SENT_DELIVERY_STATUSES:
            outcome.sent += 1
            event, detail = ("reminder_sent" if reminder else "sent"), ""
            if not reminder:
                invitation.status = InvitationStatus.SENT
                invitation.sent_at = delivery.sent_at or now
                invitation.expires_at = now + timedelta(days=invitation.survey.link_valid_days)
        elif status == "suppressed":
            outcome.suppressed += 1
            event, detail = ("reminder_suppressed" if reminder else "suppressed"), ""
            if not reminder:
                invitation.status = InvitationStatus.SUPPRESSED
        else:
            outcome.failed += 1
            if status in ("queued", "sending"):
                detail = str(_("Interrupted while sending: not sent again to avoid a duplicate."))
            else:
                detail = (delivery.error or status)[:500]
            event = "reminder_failed" if reminder else "failed"
            if not reminder:
                invitation.status = InvitationStatus.FAILED
                invitation.failed_reason = detail
        if not reminder:
            invitation.delivery = delivery
            changed.append(invitation)
        events.append((invitation.pk, event, detail))
    if changed:
        _save_results(company, changed)
    _events_add(company, events)


_RESULT_FIELDS = ["status", "sent_at", "expires_at", "failed_reason", "delivery"]


def _save_results(company: Company, rows: list[Invitation]) -> None:
    """Write the result fields of ``rows`` as they are in memory (same result as bulk_update).

    ``bulk_update`` builds one CASE per field and row, which cost most of a send. Here: one
    plain UPDATE per group of rows sharing status/sent_at/expires_at/failed_reason (usually
    one group), then the per-row delivery in one ``UPDATE … FROM (VALUES …)`` on PostgreSQL.
    Other databases keep ``bulk_update``. Like the bulk_update it replaces, this leaves
    updated_at alone: these rows leave queued/sending, the only states the stale sweep times.
    """
    if connection.vendor != "postgresql":
        Invitation.objects.for_company(company).bulk_update(rows, _RESULT_FIELDS)
        return
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        key = (row.status, row.sent_at, row.expires_at, row.failed_reason)
        groups.setdefault(key, []).append(row.pk)
    with transaction.atomic(savepoint=False):
        for (status, sent_at, expires_at, failed_reason), ids in groups.items():
            Invitation.objects.for_company(company).filter(pk__in=ids).update(
                status=status, sent_at=sent_at, expires_at=expires_at, failed_reason=failed_reason
            )
        tenant_update_per_row(
            Invitation,
            company=company,
            field_name="delivery",
            values=[(row.pk, row.delivery_id) for row in rows],
        )


def _send_interrupted(
    *,
    company: Company,
    invitations: Sequence[Invitation],
    deliveries: Sequence[Any],
    reminder: bool,
    now: datetime,
) -> None:
    """After a transient error: decided rows are recorded, undecided ones given back."""
    decided = []
    undecided = []
    for invitation, delivery in zip(invitations, deliveries, strict=False):
        if delivery.status in ("queued", "sending"):
            undecided.append((invitation, delivery))
        else:
            decided.append((invitation, delivery))
    # Rows the post office never reached (no delivery returned) are undecided too.
    undecided += [(i, None) for i in invitations[len(deliveries) :]]
    _record_results(
        company=company, results=decided, reminder=reminder, now=now, outcome=SendOutcome()
    )
    if reminder:
        Invitation.objects.for_company(company).filter(
            pk__in=[i.pk for i, _delivery in undecided]
        ).update(reminder_sent_at=None)
        return
    requeued_at = timezone.now()
    for invitation, delivery in undecided:
        invitation.status = InvitationStatus.QUEUED
        invitation.delivery = delivery
        invitation.updated_at = requeued_at  # the stale sweep times "queued" from here
    if undecided:
        Invitation.objects.for_company(company).bulk_update(
            [i for i, _delivery in undecided], ["status", "delivery", "updated_at"]
        )
    events = [
        InvitationEvent(company=company, invitation=i, event="retry", detail="transient error")
        for i, _delivery in undecided
    ]
    InvitationEvent.objects.bulk_create(events)


def invitations_give_up(
    *, company: Company, invitation_ids: Sequence[int], reason: str, reminder: bool = False
) -> int:
    """The last retry failed too: queued invitations become failed with ``reason``.

    For reminders the claim stays taken (no reminder is tried again); an event records why.
    """
    rows = Invitation.objects.for_company(company).filter(pk__in=list(invitation_ids))
    if reminder:
        ids = list(rows.filter(reminder_sent_at__isnull=True).values_list("pk", flat=True))
        rows.filter(pk__in=ids).update(reminder_sent_at=timezone.now())
        event = "reminder_failed"
    else:
        ids = list(rows.filter(status=InvitationStatus.QUEUED).values_list("pk", flat=True))
        Invitation.objects.for_company(company).filter(
            pk__in=ids, status=InvitationStatus.QUEUED
        ).update(status=InvitationStatus.FAILED, failed_reason=reason[:500])
        event = "failed"
    InvitationEvent.objects.bulk_create(
        InvitationEvent(company=company, invitation_id=pk, event=event, detail=reason[:500])
        for pk in ids
    )
    return len(ids)


def invitations_retry_later(
    *,
    company: Company,
    invitation_ids: Sequence[int],
    after: timedelta,
    max_attempts: int,
    reminder: bool = False,
) -> None:
    """Queued invitations wait in the database for another try ``after`` from now (the
    dispatcher picks them up); those that used ``max_attempts`` fail instead. Reminders need
    nothing: their claim was undone, the reminder dispatcher finds them again."""
    if reminder:
        return
    rows = Invitation.objects.for_company(company).filter(
        pk__in=list(invitation_ids), status=InvitationStatus.QUEUED
    )
    spent = list(rows.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
    if spent:
        invitations_give_up(
            company=company,
            invitation_ids=spent,
            reason=f"gave up after {max_attempts} attempts (provider unavailable)",
        )
    rows.exclude(pk__in=spent).update(
        status=InvitationStatus.SCHEDULED, scheduled_for=timezone.now() + after
    )


@dataclass
class SweepOutcome:
    """What one ``invitations_sweep_stale`` run did."""

    requeued: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0


def invitations_sweep_stale(
    *, now: datetime | None = None, batch_size: int = STALE_SWEEP_BATCH_SIZE
) -> SweepOutcome:
    """Pick up invitations stuck between the dispatcher and the provider (a system job
    across companies, run with the dispatcher).

    - ``queued`` for longer than ``STALE_QUEUED_AFTER``: the send message was lost; a send
      task is enqueued again (the claim makes a duplicate message harmless).
    - ``sending`` for longer than ``STALE_SENDING_AFTER``: the worker died during the provider
      call. The delivery ledger decides: a sent (delivered, opened…) delivery makes the
      invitation sent, a suppressed or failed one gives that result; without a decided
      delivery it fails as "interrupted: outcome unknown" and is never sent again.

    At most ``batch_size`` rows of each kind per run, oldest first, locked with SKIP LOCKED.
    """
    from surveys.tasks import send_invitations

    now = now or timezone.now()
    outcome = SweepOutcome()
    with transaction.atomic():
        rows = list(
            Invitation.objects.unscoped(reason="the stale sweep serves every company")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(status=InvitationStatus.QUEUED, updated_at__lt=now - STALE_QUEUED_AFTER)
            .order_by("updated_at", "pk")
            .values_list("pk", "company_id", "channel")[:batch_size]
        )
        if rows:
            # A fresh stamp: the row is enqueued again at most once per STALE_QUEUED_AFTER.
            Invitation.objects.unscoped(reason="rows locked just above").filter(
                pk__in=[pk for pk, _company, _channel in rows], status=InvitationStatus.QUEUED
            ).update(updated_at=now)
            by_company: dict[tuple[int, bool], list[int]] = {}
            for pk, company_id, channel in rows:
                by_company.setdefault((company_id, channel in SMS_CHANNELS), []).append(pk)
            for (company_id, texts), ids in by_company.items():
                size = SMS_SEND_BATCH_SIZE if texts else SEND_BATCH_SIZE
                for start in range(0, len(ids), size):
                    send_invitations.delay_on_commit(company_id, ids[start : start + size])
            InvitationEvent.objects.bulk_create(
                InvitationEvent(
                    company_id=company_id,
                    invitation_id=pk,
                    event="requeued",
                    detail="send message lost: enqueued again",
                )
                for pk, company_id, _channel in rows
            )
            outcome.requeued = len(rows)
    with transaction.atomic():
        stuck = list(
            Invitation.objects.unscoped(reason="the stale sweep serves every company")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(status=InvitationStatus.SENDING, updated_at__lt=now - STALE_SENDING_AFTER)
            .select_related("survey", "company")
            .order_by("updated_at", "pk")[:batch_size]
        )
        if stuck:
            _sweep_resolve_sending(stuck, now=now, outcome=outcome)
    if outcome.requeued or outcome.sent or outcome.failed or outcome.suppressed:
        logger.warning("stale invitations swept: %s", outcome)
    return outcome


def _sweep_resolve_sending(
    stuck: Sequence[Invitation], *, now: datetime, outcome: SweepOutcome
) -> None:
    """Settle invitations whose send task died mid-call from the delivery ledger (rows locked
    by the caller). Two reads of the ledger, then one write set per company."""
    from notifications.models import Delivery

    linked = {i.delivery_id for i in stuck if i.delivery_id is not None}
    by_pk = (
        Delivery.objects.unscoped(reason="the stale sweep serves every company").in_bulk(
            list(linked)
        )
        if linked
        else {}
    )
    # A first attempt links its Delivery only after the provider call: find it by the
    # metadata the send wrote (invitation public id, unique per company). Rare (a worker
    # died), and limited to the stuck rows' companies.
    unlinked = [i for i in stuck if i.delivery_id is None]
    by_metadata: dict[tuple[int, str], Any] = {}
    if unlinked:
        found = (
            Delivery.objects.unscoped(reason="the stale sweep serves every company")
            .filter(
                company_id__in={i.company_id for i in unlinked},
                metadata__message="invitation",
                metadata__invitation__in=[i.public_id for i in unlinked],
            )
            .order_by("created_at", "pk")
        )
        for delivery in found:
            key = (delivery.company_id, str(delivery.metadata.get("invitation")))
            best = by_metadata.get(key)
            # A decided row wins over an undecided one; among equals the latest.
            if best is None or not _delivery_undecided(delivery) or _delivery_undecided(best):
                by_metadata[key] = delivery
    by_company: dict[int, list[tuple[Invitation, Any]]] = {}
    for invitation in stuck:
        if invitation.delivery_id is not None:
            ledger_row = by_pk.get(invitation.delivery_id)
        else:
            ledger_row = by_metadata.get((invitation.company_id, invitation.public_id))
        by_company.setdefault(invitation.company_id, []).append((invitation, ledger_row))
    reason = "interrupted: outcome unknown"
    for pairs in by_company.values():
        company = pairs[0][0].company
        decided = [(i, d) for i, d in pairs if d is not None and not _delivery_undecided(d)]
        unknown = [i for i, d in pairs if d is None or _delivery_undecided(d)]
        result = SendOutcome()
        _record_results(company=company, results=decided, reminder=False, now=now, outcome=result)
        outcome.sent += result.sent
        outcome.failed += result.failed
        outcome.suppressed += result.suppressed
        if unknown:
            Invitation.objects.for_company(company).filter(
                pk__in=[i.pk for i in unknown], status=InvitationStatus.SENDING
            ).update(status=InvitationStatus.FAILED, failed_reason=reason, updated_at=now)
            InvitationEvent.objects.bulk_create(
                InvitationEvent(company=company, invitation=i, event="failed", detail=reason)
                for i in unknown
            )
            outcome.failed += len(unknown)
        campaigns_mark_done(
            company=company,
            campaign_ids={i.campaign_id for i, _d in pairs if i.campaign_id is not None},
        )


def _delivery_undecided(delivery: Any) -> bool:
    return delivery.status in ("queued", "sending")


def reminders_dispatch_due(*, now: datetime | None = None) -> int:
    """Enqueue the one reminder of sent, unanswered invitations whose time has come.

    A system job across companies. Per active survey with reminders on: invitations sent at
    least ``reminder_after_days`` ago, not answered, link not expired, no reminder yet. The
    send task claims each by setting ``reminder_sent_at`` (a conditional UPDATE), so an
    invitation enqueued twice (two runs before the task ran) is still reminded once.
    Unsubscribed addresses are caught by the post office (suppressed, not sent).
    """
    from surveys.tasks import send_invitations

    now = now or timezone.now()
    total = 0
    surveys = Survey.objects.unscoped(reason="the reminder dispatcher serves every company").filter(
        status=SurveyStatus.ACTIVE, reminder_after_days__isnull=False
    )
    for survey in surveys.only("pk", "company_id", "reminder_after_days"):
        assert survey.reminder_after_days is not None
        due_before = now - timedelta(days=survey.reminder_after_days)
        ids = list(
            Invitation.objects.filter(company_id=survey.company_id)
            .filter(
                survey_id=survey.pk,
                status=InvitationStatus.SENT,
                answered_at__isnull=True,
                reminder_sent_at__isnull=True,
                sent_at__lte=due_before,
            )
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("pk")
            .values_list("pk", flat=True)[:REMINDER_BATCH_SIZE]
        )
        for start in range(0, len(ids), SEND_BATCH_SIZE):
            send_invitations.delay_on_commit(
                survey.company_id, ids[start : start + SEND_BATCH_SIZE], reminder=True
            )
        total += len(ids)
    return total


def invitation_mark_answered(*, invitation: Invitation) -> bool:
    """Record that the invitation was answered (once; later answers change nothing here)."""
    now = timezone.now()
    updated = (
        Invitation.objects.filter(company_id=invitation.company_id)
        .filter(pk=invitation.pk, answered_at__isnull=True)
        .update(answered_at=now)
    )
    if updated:
        invitation.answered_at = now
        InvitationEvent.objects.create(
            company_id=invitation.company_id, invitation=invitation, event="answered"
        )
    return bool(updated)


def invitation_event_add(
    *, company: Company, invitation: Invitation, event: str, detail: str = ""
) -> InvitationEvent:
    """Put one event on the invitation's timeline (e.g. the SMS conversation's steps)."""
    if invitation.company_id != company.pk:
        raise ValueError("invitation belongs to another company")
    return InvitationEvent.objects.create(
        company=company, invitation=invitation, event=event[:32], detail=detail[:500]
    )


def invitation_record_status(
    *, company_id: int, invitation_public_id: str, status: str, occurred_at: datetime
) -> bool:
    """A provider's news about an invitation's message (delivered, opened, clicked, bounced…)
    goes on the invitation's timeline; the first delivered/opened/clicked time is kept."""
    invitation = (
        Invitation.objects.filter(company_id=company_id)
        .filter(public_id=invitation_public_id)
        .first()
    )
    if invitation is None:
        return False
    stamp_field = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}
    field = stamp_field.get(status)
    if field is not None:
        Invitation.objects.filter(company_id=company_id).filter(
            pk=invitation.pk, **{f"{field}__isnull": True}
        ).update(**{field: occurred_at})
    InvitationEvent.objects.create(
        company_id=company_id, invitation=invitation, event=status[:32], occurred_at=occurred_at
    )
    return True


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
    _survey_check_sendable(survey)
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
        address = _contact_address(contact, channel)
        assert address
        if _suppressed_on(company=company, channel=channel, addresses=[address]):
            return None, TRIGGER_SUPPRESSED
        when = timezone.now() + timedelta(seconds=delay)
        if not force and _throttled_contact_ids(
            company=company, survey=survey, contact_ids=[contact.pk], at=when
        ):
            return None, TRIGGER_THROTTLED
        invitation = _invitation_new(
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
