"""Contacts: normalising addresses and properties, creating, updating, deleting."""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Collection
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from companies.models import Company
from surveys.models import (
    LANGUAGE_CHOICES,
    Contact,
)

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


def _contact_check_unique(
    *, company: Company, contact: Contact, nobody_has: Collection[str] = ()
) -> None:
    """Refuse an email or external id that another contact of the company already has
    (``nobody_has``: the fields whose values were just looked up and found on no contact)."""
    others = Contact.objects.for_company(company).exclude(pk=contact.pk)
    errors = {}
    if contact.email and "email" not in nobody_has and others.filter(email=contact.email).exists():
        errors["email"] = [_("Another contact already has this email address.")]
    if (
        contact.external_id
        and "external_id" not in nobody_has
        and others.filter(external_id=contact.external_id).exists()
    ):
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
    # Values just looked up and held by no contact: no need to ask again whether another
    # contact has them (a concurrent insert still loses on the unique constraints).
    nobody_has: set[str] = set()
    if cleaned.get("external_id"):
        contact = contacts.filter(external_id=cleaned["external_id"]).first()
        if contact is None:
            nobody_has.add("external_id")
    if contact is None and cleaned.get("email"):
        contact = contacts.filter(email=cleaned["email"]).first()
        if contact is None:
            nobody_has.add("email")
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
    _contact_check_unique(company=company, contact=contact, nobody_has=nobody_has)
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
