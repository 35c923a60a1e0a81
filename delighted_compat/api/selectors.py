"""Reads behind Delighted's API, every one scoped to the key's company (and survey)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from companies.models import Company
from delighted_compat.models import DefaultApiSurvey, DelightedImport, ExportKind
from notifications.models import Channel, Suppression, SuppressionReason
from notifications.services import SUPPRESSION_HASH_PREFIX
from responses.models import Response
from responses.selectors import score_counts
from surveys.models import (
    AutopilotMember,
    Contact,
    Invitation,
    InvitationStatus,
    Survey,
    SurveyStatus,
)
from surveys.selectors import autopilot_members_list

ONE_SECOND = timedelta(seconds=1)


def default_survey_get(*, company: Company) -> Survey | None:
    """The company's default survey for Delighted (``/v1/`` and the importer), if chosen."""
    default = DefaultApiSurvey.objects.for_company(company).select_related("survey").first()
    return default.survey if default is not None else None


def imported_survey_latest(*, company: Company) -> Survey | None:
    """The survey the company's latest Delighted import of answers went to (not archived)."""
    last = (
        DelightedImport.objects.for_company(company)
        .filter(kind=ExportKind.RESPONSES, survey__isnull=False)
        .exclude(survey__status=SurveyStatus.ARCHIVED)
        .order_by("-created_at", "-pk")
        .values_list("survey", flat=True)
        .first()
    )
    return None if last is None else Survey.objects.for_company(company).filter(pk=last).first()


def people_list(
    *,
    company: Company,
    since: datetime | None = None,
    until: datetime | None = None,
    email: str | None = None,
    phone: str | None = None,
    after: tuple[datetime, int] | None = None,
) -> QuerySet[Contact]:
    """The company's contacts in creation order (``since``/``until`` inclusive), each with
    ``last_sent_at``, ``last_responded_at`` and ``next_survey_scheduled_at``; ``after``: the
    keyset cursor (created_at, id) of the previous page's last row."""
    qs = Contact.objects.for_company(company)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until + ONE_SECOND)
    if email is not None:
        qs = qs.filter(email=email)
    if phone is not None:
        qs = qs.filter(phone=phone)
    if after is not None:
        created_at, pk = after
        qs = qs.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk))
    return with_person_dates(qs, company=company).order_by("created_at", "pk")


def with_person_dates(qs: QuerySet[Contact], *, company: Company) -> QuerySet[Contact]:
    invitations = Invitation.objects.for_company(company).filter(contact=OuterRef("pk"))
    answers = Response.objects.for_company(company).filter(contact=OuterRef("pk"))
    return qs.annotate(
        last_sent_at=Subquery(
            invitations.filter(sent_at__isnull=False).order_by("-sent_at").values("sent_at")[:1]
        ),
        last_responded_at=Subquery(answers.order_by("-created_at").values("created_at")[:1]),
        next_survey_scheduled_at=Subquery(
            invitations.filter(status=InvitationStatus.SCHEDULED)
            .order_by("scheduled_for")
            .values("scheduled_for")[:1]
        ),
    )


def person_get(*, company: Company, identifier: str) -> Contact | None:
    """A person by id, ``email:…`` or ``phone_number:…``."""
    qs = Contact.objects.for_company(company)
    kind, colon, value = identifier.partition(":")
    if colon and kind == "email":
        return qs.filter(email__iexact=value.strip()).first()
    if colon and kind == "phone_number":
        return qs.filter(phone=value.strip()).order_by("pk").first()
    return qs.filter(public_id=identifier).first()


def person_by_email(*, company: Company, email: str) -> Contact | None:
    return Contact.objects.for_company(company).filter(email__iexact=email.strip()).first()


# Delighted's ``order`` values → our ordering.
RESPONSE_ORDERS: dict[str, tuple[str, str]] = {
    "asc": ("created_at", "pk"),
    "desc": ("-created_at", "-pk"),
    "asc:updated_at": ("updated_at", "pk"),
    "desc:updated_at": ("-updated_at", "-pk"),
}


def survey_responses_list(
    *,
    company: Company,
    survey: Survey,
    since: datetime | None = None,
    until: datetime | None = None,
    updated_since: datetime | None = None,
    updated_until: datetime | None = None,
    contact: Contact | None = None,
    order: str = "asc",
) -> QuerySet[Response]:
    """The survey's responses (every channel); time bounds inclusive, to the second."""
    qs = Response.objects.for_company(company).filter(survey=survey)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until + ONE_SECOND)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if updated_until is not None:
        qs = qs.filter(updated_at__lt=updated_until + ONE_SECOND)
    if contact is not None:
        qs = qs.filter(contact=contact)
    return qs.select_related("contact", "survey").order_by(*RESPONSE_ORDERS[order])


def survey_response_get(*, company: Company, survey: Survey, public_id: str) -> Response | None:
    return (
        Response.objects.for_company(company)
        .filter(survey=survey, public_id=public_id)
        .select_related("contact", "survey", "invitation")
        .first()
    )


def contacts_with_dates(*, company: Company, ids: Sequence[int]) -> dict[int, Contact]:
    """Contacts by pk with the person dates, for expanded responses (ONE query)."""
    qs = Contact.objects.for_company(company).filter(pk__in=list(ids))
    return {c.pk: c for c in with_person_dates(qs, company=company)}


def metrics_counts(
    *,
    company: Company,
    survey: Survey,
    since: datetime | None,
    until: datetime | None,
) -> list[int]:
    """Answers per score 0..10. Without a range: the 30 days ending at the latest answer
    (Delighted's "30-day simple moving average, from most recent response")."""
    if since is None and until is None:
        latest = (
            Response.objects.for_company(company)
            .filter(survey=survey)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if latest is None:
            return [0] * 11
        return score_counts(
            company=company,
            survey=survey,
            since=latest - timedelta(days=30),
            until=latest + ONE_SECOND,
        )
    return score_counts(
        company=company,
        survey=survey,
        since=since,
        until=None if until is None else until + ONE_SECOND,
    )


def suppressions_list(
    *,
    company: Company,
    reason: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Suppression]:
    """Email addresses unsubscribed (or bounced), oldest first, however they came about."""
    reasons = [reason]
    if reason == SuppressionReason.UNSUBSCRIBED:
        reasons.append(SuppressionReason.COMPLAINED)
    qs = (
        Suppression.objects.for_company(company)
        .filter(channel=Channel.EMAIL, reason__in=reasons)
        # An erased person's suppression is only a hash: it has no address to list.
        .exclude(address__startswith=SUPPRESSION_HASH_PREFIX)
    )
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until + ONE_SECOND)
    return qs.order_by("created_at", "pk")


def contacts_by_email(*, company: Company, emails: Sequence[str]) -> dict[str, Contact]:
    found: dict[str, Any] = {}
    for contact in Contact.objects.for_company(company).filter(email__in=list(emails)):
        found[contact.email or ""] = contact
    return found


def trend_survey(*, company: Company, trend: str) -> Survey | None:
    """A Delighted "trend" is one of the company's surveys, by its id."""
    return Survey.objects.for_company(company).filter(public_id=trend).first()


def autopilot_memberships(
    *,
    company: Company,
    survey: Survey,
    channel: str,
    person_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    after_id: int | None = None,
) -> QuerySet[AutopilotMember]:
    """The members of the survey's programme on ``channel`` in the order they joined (the
    cursor is the last id seen), with their contacts; ``person_id``, ``email`` and ``phone``
    (normalised) narrow it to one person. Empty when the programme was never set up."""
    qs = autopilot_members_list(company=company, survey=survey, channel=channel, after_id=after_id)
    if person_id is not None:
        qs = qs.filter(contact__public_id=person_id)
    if email is not None:
        qs = qs.filter(contact__email=email)
    if phone is not None:
        qs = qs.filter(contact__phone=phone)
    return qs


def autopilot_membership_find(
    *,
    company: Company,
    survey: Survey,
    channel: str,
    person_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> AutopilotMember | None:
    """One person's membership (by id, normalised email or phone number), or None."""
    if person_id is None and email is None and phone is None:
        return None
    return autopilot_memberships(
        company=company,
        survey=survey,
        channel=channel,
        person_id=person_id,
        email=email,
        phone=phone,
    ).first()
