"""Writes behind Delighted's API: each one a call into the product's own services.

A person is a contact (surveys), a survey request an invitation that the dispatcher sends
(throttling, suppressions, quiet hours, the ledger), a survey response a response
(responses), an unsubscribe a suppression (notifications). A Delighted "project" is one of
our surveys: ``project_survey``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record
from companies.models import ApiKey, Company, User
from delighted_compat.api import selectors
from delighted_compat.models import ApiKeySurvey, DefaultApiSurvey
from notifications.models import Channel, SuppressionReason
from notifications.services import suppression_add
from responses.models import Response, ResponseChannel, category_of
from responses.services import response_record
from surveys.models import AutopilotMember, Contact, Invitation, Survey, SurveyStatus
from surveys.selectors import autopilot_config_get
from surveys.services.autopilot import autopilot_member_add, autopilot_member_remove
from surveys.services.contacts import (
    contact_clean,
    contact_update,
    contact_upsert,
    normalize_properties,
)
from surveys.services.invitations import invitations_cancel_pending
from surveys.services.surveys import survey_create, survey_set_status
from surveys.services.triggers import TRIGGER_CREATED, invitation_trigger

# --- Projects: which survey a key acts on ------------------------------------------------------

# A brand name: the same in every language.
DEFAULT_SURVEY_NAME = "Delighted"


def project_survey_existing(*, api_key: ApiKey) -> Survey | None:
    """The survey the key's ``/v1/`` calls act on, if there is one yet (reads create nothing):
    the key's own, else the company's default survey for this API."""
    company = api_key.company
    bound = (
        ApiKeySurvey.objects.for_company(company)
        .filter(api_key=api_key)
        .select_related("survey")
        .first()
    )
    if bound is not None:
        return bound.survey
    return selectors.default_survey_get(company=company)


def project_survey(*, api_key: ApiKey) -> Survey:
    """``project_survey_existing``, else the company's default survey for this API, created
    now (active, the default wording in the company's language)."""
    existing = project_survey_existing(api_key=api_key)
    if existing is not None:
        return existing
    return default_survey_ensure(company=api_key.company)


def default_survey_ensure(*, company: Company, created_by: User | None = None) -> Survey:
    """The company's one survey for what comes from Delighted: the one its unbound keys act
    on through ``/v1/`` and the one the importer puts answers in by default, so a migrating
    company finds its history and its new answers together, whichever came first.

    The first time: the survey the company's latest Delighted import of answers went to
    (unless archived; a draft is activated, as ``/v1/`` schedules surveys in it), else a new
    active survey named "Delighted" (the default wording in the company's language).
    """
    default = selectors.default_survey_get(company=company)
    if default is not None:
        return default
    try:
        with transaction.atomic():
            survey = selectors.imported_survey_latest(company=company)
            if survey is None:
                survey = survey_create(
                    company=company,
                    name=DEFAULT_SURVEY_NAME,
                    default_language=company.default_language,
                    created_by=created_by,
                )
            if survey.status == SurveyStatus.DRAFT:
                survey_set_status(company=company, survey=survey, status=SurveyStatus.ACTIVE)
            DefaultApiSurvey.objects.create(company=company, survey=survey)
            return survey
    except IntegrityError:
        # Another request chose it first: use theirs (this one was rolled back).
        found = selectors.default_survey_get(company=company)
        assert found is not None
        return found


def api_key_bind_survey(*, company: Company, api_key: ApiKey, survey: Survey | None) -> None:
    """Make ``survey`` the key's Delighted project (None: the company's default survey)."""
    if api_key.company_id != company.pk or (survey is not None and survey.company_id != company.pk):
        raise ValueError("key and survey must belong to the company")
    bindings = ApiKeySurvey.objects.for_company(company).filter(api_key=api_key)
    with transaction.atomic():
        current = bindings.select_related("survey").select_for_update().first()
        before = current.survey if current else None
        if survey is None:
            bindings.delete()
        else:
            ApiKeySurvey.objects.for_company(company).update_or_create(
                company=company, api_key=api_key, defaults={"survey": survey}
            )
        if before != survey:
            audit_record(
                company=company,
                action=AuditAction.API_KEY_SURVEY_BOUND,
                target=api_key,
                changes={"survey": [_survey_name(before), _survey_name(survey)]},
            )


def _survey_name(survey: Survey | None) -> str | None:
    return survey.name if survey is not None else None


# --- People ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonInput:
    """``POST /v1/people``'s parameters, parsed."""

    email: str | None
    phone_number: str | None
    name: str | None
    properties: dict[str, Any] | None
    channel: str
    delay: int
    send: bool
    last_sent_at: datetime | None
    email_update: str | None
    phone_number_update: str | None


@dataclass(frozen=True)
class PersonResult:
    contact: Contact
    created: bool
    invitation: Invitation | None


def _find_person(*, company: Company, email: str | None, phone: str | None) -> Contact | None:
    contacts = Contact.objects.for_company(company)
    if email:
        cleaned = contact_clean(company=company, email=email)
        return contacts.filter(email=cleaned["email"]).first()
    if phone:
        cleaned = contact_clean(company=company, phone=phone)
        return contacts.filter(phone=cleaned["phone"]).order_by("pk").first()
    return None


def _check_person(data: PersonInput) -> None:
    errors: dict[str, list[str]] = {}
    if not data.email and not data.phone_number:
        errors["email"] = [_("can't be blank")]
    if data.channel not in (Channel.EMAIL, Channel.SMS):
        errors["channel"] = [_("must be email or sms")]
    elif data.channel == Channel.SMS and not data.phone_number and not data.phone_number_update:
        errors["phone_number"] = [_("can't be blank when the channel is sms")]
    if data.delay < 0:
        errors["delay"] = [_("must be 0 or more")]
    if errors:
        raise ValidationError(errors)


def person_create(*, company: Company, survey: Survey | None, data: PersonInput) -> PersonResult:
    """Create or update a person (by email, else by phone number) and, unless ``send`` is
    false, schedule a survey request of ``survey`` through the transactional trigger.

    A suppressed address, or a person surveyed within the survey's throttle window (our
    invitations, or ``last_sent_at``), gets no request: ``invitation`` is None then, like a
    throttled request at Delighted.
    """
    _check_person(data)
    with transaction.atomic():
        existing = _find_person(company=company, email=data.email, phone=data.phone_number)
        changes: dict[str, Any] = {"name": data.name, "properties": data.properties}
        if data.email_update:
            changes["email"] = data.email_update
        if data.phone_number_update:
            changes["phone"] = data.phone_number_update
        if existing is not None:
            if data.email and data.phone_number:  # found by email: the number is news
                changes.setdefault("phone", data.phone_number)
            contact = contact_update(company=company, contact=existing, **changes)
            created = False
        else:
            contact, created = contact_upsert(
                company=company,
                email=changes.get("email", data.email),
                phone=changes.get("phone", data.phone_number),
                name=data.name,
                properties=data.properties,
            )
        invitation = None
        if data.send and survey is not None and not _recently_sent(survey=survey, data=data):
            language = (data.properties or {}).get("locale")
            language = str(language).split("-")[0].split("_")[0].lower() if language else None
            invitation, outcome = invitation_trigger(
                company=company,
                survey=survey,
                # Both addresses: the trigger then finds this very contact by its email
                # (a phone number alone may be shared by several contacts).
                email=contact.email,
                phone=contact.phone,
                properties=data.properties,
                channel=data.channel,
                delay=data.delay,
                language=language if language in ("en", "ru", "kk") else None,
            )
            if outcome != TRIGGER_CREATED:
                invitation = None
    return PersonResult(contact=contact, created=created, invitation=invitation)


def _recently_sent(*, survey: Survey, data: PersonInput) -> bool:
    """Delighted's ``last_sent_at``: surveyed elsewhere within the survey's throttle window."""
    if data.last_sent_at is None or not survey.throttle_days:
        return False
    when = timezone.now() + timedelta(seconds=data.delay)
    return data.last_sent_at > when - timedelta(days=survey.throttle_days)


def pending_requests_delete(*, company: Company, survey: Survey, contact: Contact) -> int:
    """Cancel the person's survey requests not sent yet (this project's)."""
    return invitations_cancel_pending(company=company, contact=contact, survey=survey)


def unsubscribe_create(*, company: Company, email: str) -> Contact:
    """Unsubscribe an email address from every survey, as the survey's own link would; an
    unknown address becomes a person first, so that it shows in the list."""
    contact = _find_person(company=company, email=email, phone=None)
    if contact is None:
        contact, _created = contact_upsert(company=company, email=email)
    assert contact.email
    suppression_add(
        company=company,
        channel=Channel.EMAIL,
        address=contact.email,
        reason=SuppressionReason.UNSUBSCRIBED,
        detail="Delighted API",
    )
    return contact


# --- Survey responses --------------------------------------------------------------------------


def _clean_response_properties(properties: dict[str, Any] | None) -> dict[str, Any] | None:
    if properties is None:
        return None
    try:
        return normalize_properties(properties)
    except ValidationError as exc:
        raise ValidationError({"person_properties": exc.messages}) from exc


def survey_response_create(
    *,
    company: Company,
    survey: Survey,
    contact: Contact,
    score: object,
    comment: str | None,
    person_properties: dict[str, Any] | None,
    created_at: datetime | None,
) -> Response:
    """A response given outside our pages (Delighted's "add a response"): recorded like a
    web-link answer of that person, so it counts everywhere an answer counts."""
    properties = _clean_response_properties(person_properties)
    with transaction.atomic():
        response = response_record(
            invitation=None,
            survey=survey,
            score=score,  # type: ignore[arg-type]  # response_record validates it
            comment=comment,
            channel=ResponseChannel.LINK,
            language=contact.language or survey.default_language,
            contact=contact,
            # One row per call: a key no browser has.
            browser_key=f"v1:{secrets.token_hex(28)}",
        )
        changes: dict[str, Any] = {}
        if properties:
            changes["invitation_properties"] = properties
        if created_at is not None:
            changes["created_at"] = created_at
        if changes:
            Response.objects.for_company(company).filter(pk=response.pk).update(**changes)
            for field, value in changes.items():
                setattr(response, field, value)
    return response


def _clean_score(score: object) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValidationError({"score": [_("Choose a score from 0 to 10.")]})
    return score


def survey_response_update(
    *,
    company: Company,
    response: Response,
    contact: Contact | None,
    score: object,
    comment: str | None,
    person_properties: dict[str, Any] | None,
) -> Response:
    """Change a response's score, comment, person or properties (merged)."""
    properties = _clean_response_properties(person_properties)
    if score is None:
        score = response.score
    with transaction.atomic():
        if response.invitation_id is not None or response.browser_key:
            response = response_record(
                invitation=response.invitation,
                survey=response.survey,
                score=score,  # type: ignore[arg-type]  # response_record validates it
                comment=comment,
                channel=response.channel,
                language=response.language,
                browser_key=None if response.invitation_id else response.browser_key,
            )
        else:
            # An answer with neither (imported): changed in place.
            cleaned_score = _clean_score(score)
            Response.objects.for_company(company).filter(pk=response.pk).update(
                score=cleaned_score,
                category=category_of(cleaned_score),
                comment=response.comment if comment is None else comment.strip(),
                updated_at=timezone.now(),
            )
        changes: dict[str, Any] = {}
        if properties:
            changes["invitation_properties"] = {**response.invitation_properties, **properties}
        anonymous = response.survey.anonymous
        if contact is not None and contact.pk != response.contact_id and not anonymous:
            changes["contact"] = contact
        if changes:
            Response.objects.for_company(company).filter(pk=response.pk).update(**changes)
    return (
        Response.objects.for_company(company)
        .select_related("contact", "survey")
        .get(pk=response.pk)
    )


# --- Autopilot (recurring surveys) -------------------------------------------------------------

# Our field names → Delighted's parameters of the membership calls.
_MEMBERSHIP_FIELDS = {
    "email": "person_email",
    "phone": "person_phone_number",
    "name": "person_name",
    "channel": "base",
}


def _membership_errors(exc: ValidationError) -> ValidationError:
    """``exc`` keyed by Delighted's parameter names."""
    if not hasattr(exc, "error_dict"):
        return exc
    return ValidationError(
        {_MEMBERSHIP_FIELDS.get(name, name): errors for name, errors in exc.message_dict.items()}
    )


def _autopilot_program(*, company: Company, survey: Survey | None, channel: str) -> None:
    """A ValidationError (Delighted's 422) unless the programme is set up on ``channel``."""
    program = (
        None
        if survey is None
        else autopilot_config_get(company=company, survey=survey, channel=channel)
    )
    if program is None:
        raise ValidationError(
            {"base": [_("Recurring surveys are not set up for this channel yet.")]}
        )


@dataclass(frozen=True)
class MembershipInput:
    """``POST /v1/autopilot/{platform}/memberships``'s parameters, parsed."""

    person_id: str | None
    email: str | None
    phone_number: str | None
    name: str | None
    properties: dict[str, Any] | None


def _membership_person(*, company: Company, channel: str, data: MembershipInput) -> Contact:
    """The person to add: by id, else by email, else by phone number (created when new); a
    name or an address given along fills in or changes the person's."""
    changes = {"email": data.email, "phone": data.phone_number, "name": data.name}
    if data.person_id:
        contact = Contact.objects.for_company(company).filter(public_id=data.person_id).first()
        if contact is None:
            raise ValidationError({"person_id": [_("is unknown")]})
        given = {field: value for field, value in changes.items() if value}
        return contact_update(company=company, contact=contact, **given) if given else contact
    if not data.email and not data.phone_number:
        field = "phone" if channel == Channel.SMS else "email"
        raise ValidationError({field: [_("can't be blank")]})
    existing = _find_person(company=company, email=data.email, phone=data.phone_number)
    if existing is None:
        contact, _created = contact_upsert(
            company=company, email=data.email, phone=data.phone_number, name=data.name
        )
        return contact
    # Found by email: a phone number given along is news (as ``person_create``).
    return contact_update(
        company=company,
        contact=existing,
        name=data.name,
        phone=data.phone_number if data.email else None,
    )


def autopilot_membership_add(
    *, company: Company, survey: Survey | None, channel: str, data: MembershipInput
) -> AutopilotMember:
    """Delighted's "add a person to Autopilot, or replace their Autopilot properties": the
    person joins the survey's programme on ``channel`` (first asked after its first delay),
    or its membership's properties are replaced (those of its next and later asks).

    All or nothing: ``ValidationError`` keyed by Delighted's parameters when the programme
    is not set up, the person is missing or unknown, or has no address on the channel.
    """
    try:
        _autopilot_program(company=company, survey=survey, channel=channel)
        assert survey is not None
        with transaction.atomic():
            contact = _membership_person(company=company, channel=channel, data=data)
            member, _created = autopilot_member_add(
                company=company,
                survey=survey,
                channel=channel,
                contact=contact,
                properties=data.properties,
            )
    except ValidationError as exc:
        raise _membership_errors(exc) from exc
    return member


def autopilot_membership_remove(
    *,
    company: Company,
    survey: Survey | None,
    channel: str,
    person_id: str | None,
    email: str | None,
    phone_number: str | None,
) -> Contact | None:
    """Delighted's "remove a person from Autopilot" (exactly one identifier): the member
    leaves the programme and an ask still waiting is cancelled; the person and their
    answers stay. Returns the person, or None when they are not a member (a 404).
    ``ValidationError``: not set up, not exactly one identifier, a malformed one."""
    given = [value for value in (person_id, email, phone_number) if value]
    if len(given) != 1:
        raise ValidationError(
            {"base": [_("Give exactly one of person_id, person_email or person_phone_number.")]}
        )
    try:
        _autopilot_program(company=company, survey=survey, channel=channel)
        assert survey is not None
        cleaned = contact_clean(company=company, email=email or None, phone=phone_number or None)
    except ValidationError as exc:
        raise _membership_errors(exc) from exc
    member = selectors.autopilot_membership_find(
        company=company,
        survey=survey,
        channel=channel,
        person_id=person_id,
        email=cleaned.get("email"),
        phone=cleaned.get("phone"),
    )
    if member is None:
        return None
    autopilot_member_remove(company=company, survey=survey, channel=channel, contact=member.contact)
    return member.contact
