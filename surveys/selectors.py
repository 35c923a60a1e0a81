"""Reads of the surveys app. The company is always an explicit keyword."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils.translation import gettext as _

from companies.models import Company
from surveys.defaults import DEFAULT_TEXTS, LANGUAGES
from surveys.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactImport,
    Invitation,
    InvitationStatus,
    Survey,
    SurveyStatus,
)

# --- Surveys ----------------------------------------------------------------------------------


def surveys_list(*, company: Company, include_archived: bool = True) -> QuerySet[Survey]:
    """The company's surveys, newest first (the API's cursor order)."""
    queryset = Survey.objects.for_company(company)
    if not include_archived:
        queryset = queryset.exclude(status=SurveyStatus.ARCHIVED)
    return queryset.order_by("-created_at", "-id")


def survey_get(*, company: Company, public_id: str) -> Survey | None:
    return Survey.objects.for_company(company).filter(public_id=public_id).first()


def survey_language(*, survey: Survey, language: str | None) -> str:
    """The respondent language to use: ``language`` if we have it, else the survey's default."""
    if language in LANGUAGES:
        return str(language)
    return survey.default_language if survey.default_language in LANGUAGES else "en"


def survey_text(*, survey: Survey, company: Company, language: str, key: str) -> str:
    """One text of ``survey`` in ``language``, ``{company}`` filled in.

    The survey's own wording for that language wins when it is not blank; otherwise the
    default wording of the survey's kind in that language. A language we have no wording for
    falls back to the survey's default language. (A custom text in another language is never
    used instead: the respondent's own language, even in default wording, reads better.)
    """
    language = survey_language(survey=survey, language=language)
    custom = (survey.texts or {}).get(language) or {}
    text = custom.get(key) if isinstance(custom, dict) else None
    if not isinstance(text, str) or not text.strip():
        kind_texts = DEFAULT_TEXTS.get(survey.kind, DEFAULT_TEXTS["nps"])
        text = kind_texts[language][key]
    return text.replace("{company}", company.name)


def survey_extra_questions(*, survey: Survey, language: str) -> list[dict[str, Any]]:
    """The survey's extra questions worded in ``language`` (else its default language).

    ``[{"id": str, "kind": "choice"|"text", "text": str, "choices": [str, …]}, …]``; the
    answers are keyed by ``id`` (for a choice question the value is the choice's position).
    """
    language = survey_language(survey=survey, language=language)

    def pick(texts: Any) -> str:
        if isinstance(texts, str):
            return texts
        if not isinstance(texts, dict):
            return ""
        return str(
            texts.get(language)
            or texts.get(survey.default_language)
            or next(iter(texts.values()), "")
        )

    return [
        {
            "id": question.get("id", ""),
            "kind": question.get("kind", "text"),
            "text": pick(question.get("text")),
            "choices": [pick(choice) for choice in question.get("choices") or []],
        }
        for question in survey.extra_questions or []
        if isinstance(question, dict)
    ]


# --- Contacts ---------------------------------------------------------------------------------

AUDIENCE_OPS = ("eq", "neq", "in", "exists")


def contact_get(*, company: Company, public_id: str) -> Contact | None:
    return Contact.objects.for_company(company).filter(public_id=public_id).first()


def _property_condition(
    queryset: QuerySet[Contact], index: int, key: str, op: str, value: Any
) -> tuple[QuerySet[Contact], Q]:
    """A condition on ``properties[key]`` that works on PostgreSQL and SQLite alike.

    The key goes through ``KeyTransform`` (an expression), never into a lookup string, so a
    key such as ``a__b`` or ``contains`` is just a key. A missing key never equals anything;
    ``neq`` matches contacts without the key too.
    """
    if op == "exists":
        return queryset, Q(properties__has_key=key)
    alias = f"_property_{index}"
    queryset = queryset.alias(**{alias: KeyTransform(key, "properties")})
    if op == "in":
        values = list(value) if isinstance(value, list | tuple) else [value]
        return queryset, Q(**{f"{alias}__in": values})
    equal = Q(**{alias: value})
    if op == "neq":
        return queryset, ~Q(properties__has_key=key) | ~equal
    return queryset, equal


def property_value_candidates(text: str) -> list[str | int | float | bool]:
    """What a typed-in filter value may mean: ``30`` matches the text "30" and the number."""
    candidates: list[str | int | float | bool] = [text]
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        candidates.append(lowered == "true")
    else:
        try:
            candidates.append(int(lowered))
        except ValueError:
            try:
                number = float(lowered)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    candidates.append(number)
    return candidates


def contacts_list(
    *,
    company: Company,
    search: str | None = None,
    properties: dict[str, str] | None = None,
) -> QuerySet[Contact]:
    """The company's contacts, newest first; ``search`` looks in name, email, phone and
    external id; ``properties`` (key → typed-in text) must all match (see
    ``property_value_candidates``)."""
    queryset: QuerySet[Contact] = Contact.objects.for_company(company)
    if search and search.strip():
        term = search.strip()
        queryset = queryset.filter(
            Q(name__icontains=term)
            | Q(email__icontains=term)
            | Q(phone__icontains=term.replace(" ", ""))
            | Q(external_id__icontains=term)
        )
    for index, (key, text) in enumerate((properties or {}).items()):
        queryset, condition = _property_condition(
            queryset, index, key, "in", property_value_candidates(text)
        )
        queryset = queryset.filter(condition)
    return queryset.order_by("-created_at", "-id")


def audience_validate(audience: Any) -> dict[str, Any]:
    """Check an audience (``{"all": true}`` or ``{"filters": [...]}``); raise ValidationError."""
    if not isinstance(audience, dict):
        raise ValidationError(_("The audience must be an object."))
    if audience.get("all") is True and not audience.get("filters"):
        return {"all": True}
    filters = audience.get("filters")
    if not isinstance(filters, list) or not filters:
        raise ValidationError(_('Give either {"all": true} or a non-empty list of "filters".'))
    for item in filters:
        if not isinstance(item, dict):
            raise ValidationError(_("Each filter must be an object."))
        key, op = item.get("property"), item.get("op", "eq")
        if not isinstance(key, str) or not key.strip():
            raise ValidationError(_("Each filter needs a property name."))
        if op not in AUDIENCE_OPS:
            raise ValidationError(
                _("Unknown filter operation “%(op)s”: use eq, neq, in or exists.") % {"op": op}
            )
        value = item.get("value")
        if op == "in" and not isinstance(value, list):
            raise ValidationError(_("The “in” operation needs a list of values."))
        if op in ("eq", "neq") and not isinstance(value, str | int | float | bool):
            raise ValidationError(_("Compare a property with text, a number or true/false."))
    return {"filters": filters}


def contacts_matching(*, company: Company, audience: dict[str, Any]) -> QuerySet[Contact]:
    """The contacts of an audience, in id order (expansion pages through them by id).

    ``audience`` is ``{"all": true}`` or ``{"filters": [{"property": k, "op": "eq" | "neq" |
    "in" | "exists", "value": v}, …]}``; all filters must hold. Values compare with their JSON
    type (the number 30 is not the text "30"). Raises ``ValidationError`` for a malformed one.
    """
    audience = audience_validate(audience)
    queryset: QuerySet[Contact] = Contact.objects.for_company(company)
    for index, item in enumerate(audience.get("filters", [])):
        queryset, condition = _property_condition(
            queryset, index, item["property"].strip(), item.get("op", "eq"), item.get("value")
        )
        queryset = queryset.filter(condition)
    return queryset.order_by("id")


def contact_invitations(*, company: Company, contact: Contact) -> QuerySet[Invitation]:
    """Every invitation of the contact, newest first, with its survey."""
    return (
        Invitation.objects.for_company(company)
        .filter(contact=contact)
        .select_related("survey")
        .order_by("-created_at", "-id")
    )


def contact_imports_list(*, company: Company) -> QuerySet[ContactImport]:
    return ContactImport.objects.for_company(company).order_by("-created_at", "-id")


def contact_import_get(*, company: Company, public_id: str) -> ContactImport | None:
    return ContactImport.objects.for_company(company).filter(public_id=public_id).first()


# --- Sending ----------------------------------------------------------------------------------


def _with_invitation_counts(queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Sent / failed / answered / pending counted from the invitations, in the same query."""
    pending = (InvitationStatus.SCHEDULED, InvitationStatus.QUEUED, InvitationStatus.SENDING)
    return queryset.annotate(
        invited_count=Count("invitations"),
        sent_count=Count("invitations", filter=Q(invitations__status=InvitationStatus.SENT)),
        delivered_count=Count("invitations", filter=Q(invitations__delivered_at__isnull=False)),
        failed_count=Count("invitations", filter=Q(invitations__status=InvitationStatus.FAILED)),
        suppressed_at_send_count=Count(
            "invitations", filter=Q(invitations__status=InvitationStatus.SUPPRESSED)
        ),
        pending_count=Count("invitations", filter=Q(invitations__status__in=pending)),
        answered_count=Count("invitations", filter=Q(invitations__answered_at__isnull=False)),
    )


def campaigns_list(*, company: Company, survey: Survey | None = None) -> QuerySet[Campaign]:
    """The company's campaigns, newest first, each with its invitation counts (one query)."""
    queryset = Campaign.objects.for_company(company).select_related("survey")
    if survey is not None:
        queryset = queryset.filter(survey=survey)
    return _with_invitation_counts(queryset).order_by("-created_at", "-id")


def campaign_get(*, company: Company, public_id: str) -> Campaign | None:
    return campaigns_list(company=company).filter(public_id=public_id).first()


@dataclass(frozen=True)
class CampaignProgress:
    """Where a campaign stands (from a campaign of ``campaigns_list``, no further query)."""

    running: bool  # still preparing or sending: the page keeps polling
    targeted: int
    pending: int
    sent: int
    delivered: int
    failed: int
    answered: int
    response_rate: float | None  # answered / sent, in percent; None before anything is sent


def campaign_progress(*, campaign: Campaign, now: datetime) -> CampaignProgress:
    """Counts of a campaign as it goes out. Running: preparing or sending, or scheduled and
    due (its worker is about to pick it up); a campaign due later, done or cancelled is not."""
    running = campaign.status in (CampaignStatus.EXPANDING, CampaignStatus.SENDING) or (
        campaign.status == CampaignStatus.SCHEDULED and campaign.scheduled_for <= now
    )
    sent = campaign.sent_count  # type: ignore[attr-defined]
    answered = campaign.answered_count  # type: ignore[attr-defined]
    return CampaignProgress(
        running=running,
        targeted=campaign.targeted,
        pending=campaign.pending_count,  # type: ignore[attr-defined]
        sent=sent,
        delivered=campaign.delivered_count,  # type: ignore[attr-defined]
        failed=campaign.failed_count,  # type: ignore[attr-defined]
        answered=answered,
        response_rate=100.0 * answered / sent if sent else None,
    )


def campaign_invitations(*, company: Company, campaign: Campaign) -> QuerySet[Invitation]:
    """The campaign's invitations in the order they were made, with contact and delivery."""
    return (
        Invitation.objects.for_company(company)
        .filter(campaign=campaign)
        .select_related("contact", "delivery")
        .order_by("id")
    )


def invitations_list(
    *, company: Company, survey: Survey | None = None, status: str | None = None
) -> QuerySet[Invitation]:
    """The company's invitations, newest first, with survey and contact."""
    queryset = Invitation.objects.for_company(company).select_related("survey", "contact")
    if survey is not None:
        queryset = queryset.filter(survey=survey)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def invitation_get(*, company: Company, public_id: str) -> Invitation | None:
    return invitations_list(company=company).filter(public_id=public_id).first()
