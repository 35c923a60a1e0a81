"""Surveys: their fields' rules, creating, editing, moving between statuses."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.models import Company, User
from surveys.defaults import (
    EDITABLE_TEXT_KEYS,
    LANGUAGES,
    TEXT_DEFAULT_MAX_LENGTH,
    TEXT_MAX_LENGTH,
)
from surveys.models import (
    Survey,
    SurveyKind,
    SurveyStatus,
)

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
    with transaction.atomic():
        survey.save()
        audit_record(
            company=company,
            action=AuditAction.SURVEY_CREATED,
            target=survey,
            changes=changes_between({}, snapshot(survey, ["name", "kind", *sorted(fields)])),
        )
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
    with transaction.atomic():
        candidate.save(update_fields=update_fields)
        differences = changes_between(snapshot(survey, changed), snapshot(candidate, changed))
        if differences:
            audit_record(
                company=company,
                action=AuditAction.SURVEY_UPDATED,
                target=candidate,
                changes=differences,
            )
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
    before = survey.status
    survey.status = status
    with transaction.atomic():
        survey.save(update_fields=["status", "updated_at"])
        audit_record(
            company=company,
            action=AuditAction.SURVEY_STATUS_CHANGED,
            target=survey,
            changes={"status": [before, status]},
        )
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
            audit_record(company=company, action=AuditAction.SURVEY_DELETED, target=locked)
            locked.delete()
            return True
        if locked.status != SurveyStatus.ARCHIVED:
            audit_record(
                company=company,
                action=AuditAction.SURVEY_STATUS_CHANGED,
                target=locked,
                changes={"status": [locked.status, SurveyStatus.ARCHIVED]},
            )
            locked.status = SurveyStatus.ARCHIVED
            locked.save(update_fields=["status", "updated_at"])
    survey.status = locked.status
    return False


def survey_check_sendable(survey: Survey) -> None:
    """``survey_ensure_sendable`` as a ValidationError on the ``survey`` field."""
    try:
        survey_ensure_sendable(survey=survey)
    except SurveyNotSendable as exc:
        raise ValidationError({"survey": [str(exc)]}) from exc
