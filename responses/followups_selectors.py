"""Reads for the triage inbox: lists, counts, a follow-up with its thread, loop metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django.utils import timezone

from companies.models import Company, Membership, Role
from responses.models import (
    OPEN_STATUSES,
    Followup,
    FollowupEvent,
    FollowupStatus,
    Response,
)

INBOX_VIEWS = ("mine", "unassigned", "overdue", "all")


@dataclass(frozen=True)
class InboxFilters:
    view: str = "mine"
    survey_id: int | None = None
    status: str = ""  # "" open ones; "any"; or one FollowupStatus
    score_min: int | None = None
    score_max: int | None = None
    # A segment: the answer's contact property ``key`` equals ``value`` (snapshot at answer).
    segment: tuple[str, str] | None = None


def followups_list(
    *, company: Company, membership: Membership, filters: InboxFilters
) -> QuerySet[Followup]:
    """Newest first, everything the rows show fetched in the same query."""
    qs = Followup.objects.for_company(company).select_related(
        "survey", "response", "response__contact", "assignee__user"
    )
    now = timezone.now()
    if filters.view == "mine":
        qs = qs.filter(assignee=membership)
    elif filters.view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    elif filters.view == "overdue":
        qs = qs.filter(status__in=OPEN_STATUSES, due_at__lt=now)
    if filters.status == "":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status in FollowupStatus.values:
        qs = qs.filter(status=filters.status)
    if filters.survey_id is not None:
        qs = qs.filter(survey_id=filters.survey_id)
    if filters.score_min is not None:
        qs = qs.filter(score__gte=filters.score_min)
    if filters.score_max is not None:
        qs = qs.filter(score__lte=filters.score_max)
    if filters.segment is not None:
        key, value = filters.segment
        # Anonymous answers never match a segment: narrowing them down could single out a
        # respondent. KeyTextTransform: the key is a bound parameter, never read as a lookup
        # name (a property called "contains" is a property), and numbers compare as text.
        qs = qs.filter(
            Exact(KeyTextTransform(key, "response__contact_properties"), value),
            survey__anonymous=False,
        )
    return qs.order_by("-created_at", "-id")


def inbox_counts(*, company: Company, membership: Membership | None) -> dict[str, int]:
    """Open follow-ups: mine, unassigned, overdue, all — one aggregate query, whatever the
    number of follow-ups (the partial/composite indexes keep it cheap)."""
    now = timezone.now()
    mine = Q(assignee=membership) if membership is not None else Q(pk__in=[])
    counts: dict[str, Any] = (
        Followup.objects.for_company(company)
        .filter(status__in=OPEN_STATUSES)
        .aggregate(
            mine=Count("id", filter=mine),
            unassigned=Count("id", filter=Q(assignee__isnull=True)),
            overdue=Count("id", filter=Q(due_at__lt=now)),
            all=Count("id"),
        )
    )
    return {key: int(value or 0) for key, value in counts.items()}


def followups_digest_counts(
    *, company: Company, start: datetime, end: datetime, now: datetime | None = None
) -> dict[str, int]:
    """For a digest: follow-ups opened in [start, end) and those open and past due at ``now``
    (default: now). One aggregate query."""
    now = now or timezone.now()
    counts: dict[str, Any] = Followup.objects.for_company(company).aggregate(
        new=Count("id", filter=Q(created_at__gte=start, created_at__lt=end)),
        overdue=Count("id", filter=Q(status__in=OPEN_STATUSES, due_at__lt=now)),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def followup_get(*, company: Company, public_id: str) -> Followup | None:
    return (
        Followup.objects.for_company(company)
        .select_related("survey", "response", "response__contact", "assignee__user")
        .filter(public_id=public_id)
        .first()
    )


def followup_thread(*, company: Company, followup: Followup) -> list[FollowupEvent]:
    return list(
        FollowupEvent.objects.for_company(company)
        .filter(followup=followup)
        .select_related("actor")
        .order_by("created_at", "id")
    )


def assignable_members(*, company: Company) -> list[Membership]:
    """Teammates who work the inbox (agents and above), in a stable order."""
    return list(
        Membership.objects.for_company(company)
        .filter(role__in=[Role.AGENT, Role.MANAGER, Role.ADMIN, Role.OWNER])
        .select_related("user")
        .order_by("user__email")
    )


def loop_metrics(*, company: Company) -> dict[str, Any]:
    """Closing the loop, in one query: the share of resolved follow-ups resolved within
    their SLA, and the mean time from alert to the first reply to the customer (None when
    there is nothing to measure yet)."""
    resolved_q = Q(status=FollowupStatus.RESOLVED)
    row = Followup.objects.for_company(company).aggregate(
        resolved=Count("id", filter=resolved_q),
        within_sla=Count("id", filter=resolved_q & Q(resolved_at__lte=F("due_at"))),
        first_reply=Avg(
            ExpressionWrapper(F("first_reply_at") - F("created_at"), output_field=DurationField()),
            filter=Q(first_reply_at__isnull=False),
        ),
    )
    resolved = int(row["resolved"] or 0)
    within = int(row["within_sla"] or 0)
    first_reply: timedelta | None = row["first_reply"]
    recovery = detractor_recovery(company=company)
    return {
        **recovery,
        "resolved": resolved,
        "within_sla": within,
        "within_sla_percent": (100.0 * within / resolved) if resolved else None,
        "first_reply_hours": (
            first_reply.total_seconds() / 3600 if first_reply is not None else None
        ),
    }


def detractor_recovery(*, company: Company) -> dict[str, Any]:
    """Detractor recovery: of the contacts whose detractor follow-up was resolved and who
    answered again afterwards, how many were no longer detractors (next score ≥ 7). Anonymous
    surveys have no contact and never count. One query."""
    next_score = (
        Response.objects.filter(
            company=company,
            contact=OuterRef("response__contact"),
            created_at__gt=OuterRef("resolved_at"),
        )
        .order_by("created_at", "pk")
        .values("score")[:1]
    )
    row = (
        Followup.objects.for_company(company)
        .filter(
            status=FollowupStatus.RESOLVED,
            score__lte=6,
            response__contact__isnull=False,
            survey__anonymous=False,
        )
        .annotate(next_score=Subquery(next_score))
        .aggregate(
            answered_again=Count("id", filter=Q(next_score__isnull=False)),
            recovered=Count("id", filter=Q(next_score__gte=7)),
        )
    )
    again = int(row["answered_again"] or 0)
    recovered = int(row["recovered"] or 0)
    return {
        "answered_again": again,
        "recovered": recovered,
        "recovered_percent": (100.0 * recovered / again) if again else None,
    }
