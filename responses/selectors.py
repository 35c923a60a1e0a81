"""Reads for responses. The company is a required keyword, except at the public choke point.

``invitation_for_token`` is how the public answer pages find their company: the token in the
link is the only thing a respondent has, so that lookup cannot be scoped beforehand.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorExact
from django.db import connection
from django.db.models import Case, Count, Field, Model, Q, QuerySet, Value, When
from django.db.models.expressions import Col
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from companies import rls
from companies.models import Company
from companies.system_jobs import system_job
from nps_saas.db import fetch_one
from responses.models import Response
from surveys.models import Campaign, Contact, Invitation, Survey
from surveys.tokens import SHORT_TOKEN_LENGTH, looks_like_token, token_hash

SCORES = range(11)


def invitation_for_token(*, token: str) -> Invitation | None:
    """The invitation an answer link belongs to, or None for a malformed or unknown token.

    Malformed tokens are turned away before touching the database. Tokens are 256-bit and
    only their SHA-256 is stored, so the lookup by hash (unique index) identifies one
    invitation of one company; the company is then taken from that row. Its survey, contact
    and company come loaded with it, as ``select_related`` would.
    """
    if not looks_like_token(token):
        return None
    # Text messages carry the short token (surveys/tokens.py), emails the full one.
    field = "short_token_hash" if len(token) == SHORT_TOKEN_LENGTH else "token_hash"
    sql, plans = _token_query(field)
    hashed = token_hash(token)
    # The public pages' choke point for row-level security: the invitation's company is looked
    # up as a system job and set in the same round trip as the token lookup, which then runs
    # as that company, like everything after it (companies/rls.py).
    previous = rls.current()
    key = Invitation._meta.get_field(field)
    assert isinstance(key, Field)
    column = key.column
    choke_point = rls.company_of_row_sql(Invitation._meta.db_table, column)
    # A lookup that precedes knowing the company, by the token alone, as the API key's and
    # the widget key's are: cross-shard by design under Citus (docs/scaling.md, where the
    # measured cost of routing it to one shard instead is).
    with system_job("an answer link's token is how its page finds the company"):
        row = fetch_one(
            f"invitation_by_{field}",
            sql,
            [hashed],
            before=(choke_point, [hashed] if choke_point else []),
        )
    if row is None:
        if choke_point:
            rls.record_company(None)
            if previous != rls.NOBODY:
                rls.activate(previous)
        return None
    invitation, survey, contact, company = _models_from_row(plans, row)
    if choke_point:
        rls.record_company(company.pk)
    assert isinstance(invitation, Invitation)
    assert isinstance(survey, Survey)
    assert isinstance(contact, Contact)
    assert isinstance(company, Company)
    # Assigned as the ORM's select_related caches them (the ids are the row's own); the
    # survey is the invitation's company's own, so it shares the loaded company.
    invitation.survey, invitation.contact, invitation.company = survey, contact, company
    survey.company = company
    return invitation


# The token lookup is every answer's first query. Built by the ORM (select_related of four
# models, ~100 columns) its SQL took 0.8 ms to compile per answer and PostgreSQL 0.35 ms to
# plan, both more than the query takes to run: the statement is written once per process from
# the models' metadata, prepared once per connection (nps_saas/db.py), and its row turned
# into model instances the way the ORM does (``Model.from_db`` after each field's database
# converters). Only quoted metadata is formatted in; the hash is a parameter.

_Converters = list[tuple[int, list[Any], Col]]
_Plan = tuple[type[Model], list[str], _Converters]


def _model_columns(model: type[Model], alias: str) -> tuple[list[str], _Plan]:
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    converters: _Converters = []
    for i, field in enumerate(fields):
        col = field.get_col(alias)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((i, found, col))
    columns = [f"{alias}.{quote(field.column)}" for field in fields]
    return columns, (model, [field.attname for field in fields], converters)


@functools.cache
def _token_query(field: str) -> tuple[str, list[_Plan]]:
    quote = connection.ops.quote_name
    joined = ((Invitation, "i"), (Survey, "s"), (Contact, "c"), (Company, "co"))
    key = Invitation._meta.get_field(field)
    assert isinstance(key, Field)
    parts = [_model_columns(model, alias) for model, alias in joined]
    sql = (
        f"SELECT {', '.join(c for columns, _ in parts for c in columns)}"  # noqa: S608
        f" FROM {quote(Invitation._meta.db_table)} i"
        f" JOIN {quote(Survey._meta.db_table)} s ON s.id = i.survey_id"
        f" JOIN {quote(Contact._meta.db_table)} c ON c.id = i.contact_id"
        f" JOIN {quote(Company._meta.db_table)} co ON co.id = i.company_id"
        f" WHERE i.{quote(key.column)} = %s"
    )
    return sql, [plan for _, plan in parts]


def _models_from_row(plans: list[_Plan], row: Sequence[Any]) -> list[Model]:
    models, start = [], 0
    for model, attnames, converters in plans:
        values = list(row[start : start + len(attnames)])
        for i, functions, col in converters:
            for convert in functions:
                values[i] = convert(values[i], col, connection)
        models.append(model.from_db(connection.alias, attnames, values))
        start += len(attnames)
    return models


def survey_for_link(*, public_id: str) -> Survey | None:
    """The survey of a web link ``/l/<public_id>/`` (any status; the view decides)."""
    if not public_id or len(public_id) > 32:
        return None
    with rls.lookup(reason="public web link: the survey id names the company") as found:
        survey = (
            Survey.objects.unscoped(reason="public web link: the survey id names the company")
            .select_related("company")
            .filter(public_id=public_id)
            .first()
        )
        if survey is not None:
            found.found(survey.company_id)
    return survey


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
    campaign: Campaign | None = None,
) -> list[int]:
    """Answers per score 0..10 in ONE aggregate query (the input of dashboards.metrics);
    ``campaign``: the answers to that campaign's invitations."""
    qs = Response.objects.for_company(company)
    if survey is not None:
        qs = qs.filter(survey=survey)
    if campaign is not None:
        qs = qs.filter(invitation__campaign=campaign, invitation__company_id=company.pk)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    row = qs.aggregate(**{f"s{s}": Count("id", filter=Q(score=s)) for s in SCORES})
    return [row[f"s{s}"] for s in SCORES]


def invitation_scores(*, company: Company, invitation_ids: Sequence[int]) -> dict[int, int]:
    """The score answered to each of ``invitation_ids`` (those answered), ONE query."""
    return dict(
        Response.objects.for_company(company)
        .filter(invitation_id__in=list(invitation_ids))
        .values_list("invitation_id", "score")
    )


def score_counts_of(*, company: Company, responses: QuerySet[Response]) -> list[int]:
    """Answers per score 0..10 among ``responses`` (e.g. a filtered ``responses_list``), in
    ONE aggregate query whatever their number."""
    row = (
        responses.filter(company=company)
        .order_by()
        .aggregate(**{f"s{s}": Count("id", filter=Q(score=s)) for s in SCORES})
    )
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
