"""Reads for responses. The company is a required keyword, except at the public choke point.

``invitation_for_token`` is how the public answer pages find their company: the token in the
link is the only thing a respondent has, so that lookup cannot be scoped beforehand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorExact
from django.db import connection
from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from companies.models import Company
from responses.models import Response
from surveys.models import Contact, Invitation, Survey
from surveys.tokens import SHORT_TOKEN_LENGTH, looks_like_token, token_hash

SCORES = range(11)


def invitation_for_token(*, token: str) -> Invitation | None:
    """The invitation an answer link belongs to, or None for a malformed or unknown token.

    Malformed tokens are turned away before touching the database. Tokens are 256-bit and
    only their SHA-256 is stored, so the lookup by hash (unique index) identifies one
    invitation of one company; the company is then taken from that row.
    """
    if not looks_like_token(token):
        return None
    # Text messages carry the short token (surveys/tokens.py), emails the full one.
    field = "short_token_hash" if len(token) == SHORT_TOKEN_LENGTH else "token_hash"
    try:
        # get(), not first(): the hash is unique, and first()'s ORDER BY costs a third of
        # this lookup's time on every answer's hot path.
        invitation = (
            Invitation.objects.unscoped(
                reason="public answer page: the link's token is what names the company"
            )
            .select_related("survey", "contact", "company")
            .get(**{field: token_hash(token)})
        )
    except Invitation.DoesNotExist:
        return None
    # The survey is the invitation's company's own: share the loaded company rather than
    # join it a second time.
    invitation.survey.company = invitation.company
    return invitation


def survey_for_link(*, public_id: str) -> Survey | None:
    """The survey of a web link ``/l/<public_id>/`` (any status; the view decides)."""
    if not public_id or len(public_id) > 32:
        return None
    return (
        Survey.objects.unscoped(reason="public web link: the survey id names the company")
        .select_related("company")
        .filter(public_id=public_id)
        .first()
    )


def response_for_invitation(*, invitation: Invitation) -> Response | None:
    return Response.objects.for_company(invitation.company).filter(invitation=invitation).first()


def response_for_browser(*, survey: Survey, browser_key: str) -> Response | None:
    return (
        Response.objects.for_company(survey.company)
        .filter(survey=survey, browser_key=browser_key)
        .first()
    )


def responses_list(
    *,
    company: Company,
    survey: Survey | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    updated_since: datetime | None = None,
    score: int | None = None,
    search: str = "",
    property_name: str = "",
    property_value: str = "",
    with_comment: bool = False,
) -> QuerySet[Response]:
    """The company's responses, newest first; ``since`` inclusive, ``until`` exclusive.

    ``search`` looks for words in the comment: PostgreSQL full-text search with the
    ``simple`` configuration (no stemming, so it treats English, Russian and Kazakh alike;
    every word must appear), a case-insensitive substring elsewhere. ``property_name`` /
    ``property_value``: the contact property snapshot taken with the answer, compared as text.
    """
    qs = Response.objects.for_company(company)
    if survey is not None:
        qs = qs.filter(survey=survey)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if category:
        qs = qs.filter(category=category)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if score is not None:
        qs = qs.filter(score=score)
    if with_comment:
        qs = qs.exclude(comment="")
    if property_name:
        qs = qs.filter(Exact(KeyTextTransform(property_name, "contact_properties"), property_value))
    if search.strip():
        if connection.vendor == "postgresql":
            query = SearchQuery(search, config="simple", search_type="websearch")
            qs = qs.filter(SearchVectorExact(SearchVector("comment", config="simple"), query))
        else:
            qs = qs.filter(comment__icontains=search.strip())
    return qs.select_related("survey", "invitation", "contact").order_by("-created_at", "-id")


def score_counts(
    *,
    company: Company,
    survey: Survey | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[int]:
    """Answers per score 0..10 in ONE aggregate query (the input of dashboards.metrics)."""
    qs = Response.objects.for_company(company)
    if survey is not None:
        qs = qs.filter(survey=survey)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    row = qs.aggregate(**{f"s{s}": Count("id", filter=Q(score=s)) for s in SCORES})
    return [row[f"s{s}"] for s in SCORES]


def surveys_with_responses(*, company: Company) -> Sequence[Survey]:
    """The company's surveys for the list's filter, by name."""
    return list(Survey.objects.for_company(company).order_by("name", "id"))


# Responses listed on a contact's page: the newest, enough for any real history.
CONTACT_RESPONSES_LIMIT = 100


def contact_responses(*, company: Company, contact: Contact) -> list[Response]:
    """The contact's responses, newest first (one query, at most CONTACT_RESPONSES_LIMIT).

    Responses to anonymous (eNPS) surveys are left out: tying them to a person is what
    anonymity forbids, even for the company's admins.
    """
    return list(
        Response.objects.for_company(company)
        .filter(contact=contact, survey__anonymous=False)
        .select_related("survey")
        .order_by("-created_at", "-pk")[:CONTACT_RESPONSES_LIMIT]
    )


def notable_comments(
    *, company: Company, since: datetime, until: datetime, limit: int = 5
) -> list[Response]:
    """Answers with a comment created in [since, until): detractors first, then the latest.

    For digests; the caller must not show who answered an anonymous (eNPS) survey (the
    survey is fetched with it: ``response.survey.anonymous``)."""
    is_detractor = Case(When(category="detractor", then=Value(0)), default=Value(1))
    return list(
        Response.objects.for_company(company)
        .filter(created_at__gte=since, created_at__lt=until)
        .exclude(comment="")
        .select_related("survey", "contact")
        .order_by(is_detractor, "-created_at", "-id")[:limit]
    )
