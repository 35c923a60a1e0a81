"""Reads of the dashboards app: NPS figures over a period, its trend and segments.

Every figure comes from counts per score (design §4) fetched by a small, fixed number of
aggregate queries whose size depends on the period (days × 11 scores), not on the number of
answers: rollup rows plus the deltas not folded yet, in ONE statement (UNION ALL), so figures
are exact and current. Segments by channel, survey or language come from the rollup too;
segments by a contact property aggregate the responses table in SQL (properties are not
rolled up: that query grows with the answers in the period). Periods are whole days in the
company's time zone.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypedDict

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.utils import timezone

from companies.models import Company
from dashboards.metrics import Comparison, Interval, NpsReport, nps_compare, nps_report
from dashboards.models import Rollup, RollupDelta, RollupZone
from responses.models import Response, ResponseChannel
from surveys.models import Survey

Trend = Literal["day", "week", "month"]
TRENDS: tuple[Trend, ...] = ("day", "week", "month")
# Segment kinds served from the rollups or the responses table; any other segment name is a
# contact property (from the snapshot taken with the answer). "property:<name>" names a
# property even when it is spelt like a kind.
SEGMENT_KINDS = ("channel", "survey", "language")
PROPERTY_PREFIX = "property:"
# Anonymous (eNPS) answers: a segment this small could point at a person, so it is hidden.
ANONYMOUS_MIN_GROUP = 5

Counts = list[int]


class PeriodFigures(NpsReport):
    since: date | None
    until: date | None


class PreviousFigures(PeriodFigures):
    difference: float | None
    difference_ci95: Interval | None
    z: float | None
    p_value: float | None
    significant: bool


class TrendPoint(TypedDict):
    start: date
    end: date
    response_count: int
    nps: float | None
    ci95: Interval | None
    low_sample: bool


class SegmentFigures(TypedDict):
    value: str | None
    name: str
    response_count: int
    nps: float | None
    ci95: Interval | None
    low_sample: bool


class Metrics(PeriodFigures):
    previous: PreviousFigures | None
    year_ago: PreviousFigures | None
    trend: list[TrendPoint] | None
    segments: list[SegmentFigures] | None
    segments_hidden: int


@dataclass(frozen=True)
class _Scope:
    company: Company
    zone: zoneinfo.ZoneInfo
    survey: Survey | None
    channel: str | None
    since: date | None
    until: date | None  # inclusive


def company_zone(company: Company) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(company.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def day_bounds(company: Company, since: date, until: date) -> tuple[datetime, datetime]:
    """The instants that start ``since`` and end ``until`` (inclusive days) in the company's
    time zone: a filter ``created_at >= start, < end`` on an indexed column."""
    zone = company_zone(company)
    return _instant(since, zone), _instant(until + timedelta(days=1), zone)


def company_today(company: Company) -> date:
    return timezone.localtime(timezone=company_zone(company)).date()


def metrics_for(
    *,
    company: Company,
    survey: Survey | None = None,
    since: date | None = None,
    until: date | None = None,
    trend: Trend | None = None,
    channel: str | None = None,
    segment: str | None = None,
    year_ago: bool = False,
) -> Metrics:
    """NPS figures of ``company`` (one survey or all) over ``since``..``until`` (inclusive days,
    company time zone; ``since`` None = from the first answer).

    With ``since``, also the previous period of equal length (and, with ``year_ago``, the same
    days a year earlier) with the two-period test. ``trend`` buckets by day, ISO week or
    calendar month; ``segment`` groups by channel, survey, language or a contact property.
    """
    if since is not None and until is None:
        until = company_today(company)
    scope = _Scope(company, company_zone(company), survey, channel, since, until)
    live = _rollup_is_stale(company)
    by_bucket = _score_counts(scope, key=trend, live=live)
    current = _sum(by_bucket.values())
    figures: Metrics = {
        **_period_figures(current, since, until),
        "previous": None,
        "year_ago": None,
        "trend": None,
        "segments": None,
        "segments_hidden": 0,
    }
    if since is not None and until is not None:
        length = (until - since).days + 1
        earlier = _shifted(scope, since, until, days=length)
        figures["previous"] = _compared(current, earlier, live=live)
        if year_ago:
            figures["year_ago"] = _compared(current, _year_earlier(scope, since, until), live=live)
    if trend is not None:
        last = until or company_today(company)
        figures["trend"] = _trend_points(by_bucket, trend, since, last)
    if segment:
        segments = _segments(scope, segment, live=live)
        if _is_anonymous_scope(company, survey):
            shown = [s for s in segments if s["response_count"] >= ANONYMOUS_MIN_GROUP]
            figures["segments_hidden"] = len(segments) - len(shown)
            segments = shown
        figures["segments"] = segments
    return figures


# --- Figures from counts ----------------------------------------------------------------------


def _sum(rows: Iterable[Counts]) -> Counts:
    total = [0] * 11
    for counts in rows:
        for score, n in enumerate(counts):
            total[score] += n
    return total


def _period_figures(counts: Counts, since: date | None, until: date | None) -> PeriodFigures:
    return {**nps_report(counts), "since": since, "until": until}


def _compared(current: Counts, scope: _Scope, *, live: bool) -> PreviousFigures:
    earlier = _sum(_score_counts(scope, key=None, live=live).values())
    test: Comparison | None = nps_compare(current, earlier)
    return {
        **_period_figures(earlier, scope.since, scope.until),
        "difference": test["difference"] if test else None,
        "difference_ci95": test["ci95"] if test else None,
        "z": test["z"] if test else None,
        "p_value": test["p_value"] if test else None,
        "significant": test["significant"] if test else False,
    }


def _shifted(scope: _Scope, since: date, until: date, *, days: int) -> _Scope:
    return replace(scope, since=since - timedelta(days=days), until=until - timedelta(days=days))


def _year_earlier(scope: _Scope, since: date, until: date) -> _Scope:
    def back(day: date) -> date:
        try:
            return day.replace(year=day.year - 1)
        except ValueError:  # 29 February
            return day.replace(year=day.year - 1, day=28)

    return replace(scope, since=back(since), until=back(until))


# --- Trend ------------------------------------------------------------------------------------


def _bucket_start(day: date, trend: Trend) -> date:
    if trend == "week":
        return day - timedelta(days=day.weekday())
    if trend == "month":
        return day.replace(day=1)
    return day


def _bucket_after(start: date, trend: Trend) -> date:
    if trend == "week":
        return start + timedelta(days=7)
    if trend == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def _trend_points(
    by_bucket: dict[Any, Counts], trend: Trend, since: date | None, last: date
) -> list[TrendPoint]:
    """Every bucket from ``since`` (or the first answer's) to ``last``, empty ones included so
    a chart shows the gaps; the first and last buckets are clipped to the period."""
    starts = [k for k in by_bucket if k is not None]
    first = since or (min(starts) if starts else None)
    if first is None:
        return []
    points: list[TrendPoint] = []
    start = _bucket_start(first, trend)
    while start <= last:
        after = _bucket_after(start, trend)
        report = nps_report(by_bucket.get(start, [0] * 11))
        points.append(
            {
                "start": max(start, first),
                "end": min(after - timedelta(days=1), last),
                "response_count": report["response_count"],
                "nps": report["nps"],
                "ci95": report["ci95"],
                "low_sample": report["low_sample"],
            }
        )
        start = after
    return points


# --- Segments ---------------------------------------------------------------------------------


def _segments(scope: _Scope, segment: str, *, live: bool) -> list[SegmentFigures]:
    counts = _score_counts(scope, key=segment, live=live)
    labels = _segment_labels(scope.company, segment, counts.keys())
    rows: list[SegmentFigures] = []
    for value, per_score in counts.items():
        report = nps_report(per_score)
        if report["response_count"] == 0:
            continue
        text = None if value is None else str(value)
        rows.append(
            {
                "value": labels.get(value, (text, text or ""))[0],
                "name": labels.get(value, (text, text or ""))[1],
                "response_count": report["response_count"],
                "nps": report["nps"],
                "ci95": report["ci95"],
                "low_sample": report["low_sample"],
            }
        )
    # Best first; a tie by size; groups without a value last.
    rows.sort(key=lambda r: (r["value"] is None, -(r["nps"] or 0), -r["response_count"]))
    return rows


def _segment_labels(
    company: Company, segment: str, values: Iterable[Any]
) -> dict[Any, tuple[str | None, str]]:
    """(value, label) for values that are not shown as themselves: surveys by public id."""
    if segment == "survey":
        surveys = Survey.objects.for_company(company).filter(pk__in=list(values))
        return {s.pk: (s.public_id, s.name) for s in surveys}
    if segment == "channel":
        return {v: (v, str(ResponseChannel(v).label)) for v in values if v in ResponseChannel}
    return {}


def _is_anonymous_scope(company: Company, survey: Survey | None) -> bool:
    """Whether the answers may include anonymous ones. Company-wide, any anonymous survey of
    the company counts: its answers are in the company's figures."""
    if survey is not None:
        return survey.anonymous
    return Survey.objects.for_company(company).filter(anonymous=True).exists()


# --- Counts per score, grouped ----------------------------------------------------------------


def _rollup_is_stale(company: Company) -> bool:
    """True while the company's rollup days are in a time zone it no longer has (the next fold
    re-buckets them); reads then count live from the responses table."""
    zone = RollupZone.objects.for_company(company).values_list("time_zone", flat=True).first()
    return zone is not None and zone != company.time_zone


def _score_counts(scope: _Scope, *, key: str | None, live: bool) -> dict[Any, Counts]:
    """Answers per score grouped by ``key``: None (one group), a trend, or a segment."""
    if live or not (key is None or key in TRENDS or key in SEGMENT_KINDS):
        rows = _responses_rows(scope, key)
    else:
        rows = _rollup_rows(scope, key)
    grouped: dict[Any, Counts] = defaultdict(lambda: [0] * 11)
    for group, score, n in rows:
        grouped[group][score] += int(n)
    return dict(grouped)


def _day_key(field: str, key: str | None) -> Any:
    if key == "week":
        return TruncWeek(field)
    if key == "month":
        return TruncMonth(field)
    return F(field)


def _rollup_rows(scope: _Scope, key: str | None) -> list[tuple[Any, int, int]]:
    """Rollup rows plus pending deltas, grouped by (key, score) in each part: one statement,
    so one snapshot (a fold committing meanwhile cannot make an answer count twice or never).
    """
    rollup: QuerySet[Any] = Rollup.objects.for_company(scope.company)
    deltas: QuerySet[Any] = RollupDelta.objects.for_company(scope.company)
    # The local day of a delta is computed, not indexed: bound its instant too (a day of
    # slack each side, as for the responses table), so the (company, created_at) index
    # narrows the scan instead of reading every pending (or just folded, dead) delta.
    if scope.since is not None:
        deltas = deltas.filter(
            created_at__gte=_instant(scope.since, scope.zone) - timedelta(days=1)
        )
    if scope.until is not None:
        deltas = deltas.filter(created_at__lt=_instant(scope.until, scope.zone) + timedelta(days=2))
    deltas = deltas.annotate(day=TruncDate("created_at", tzinfo=scope.zone))
    rollup, deltas = (_narrowed(qs, scope) for qs in (rollup, deltas))
    group: dict[str, Any]
    if key in TRENDS:
        group = {"k": _day_key("day", key)}
    elif key in ("channel", "language"):
        group = {"k": F(key)}
    elif key == "survey":
        group = {"k": F("survey_id")}
    else:
        group = {}
    parts = [
        qs.values(**group, s=F("score")).annotate(n=Sum(column)).order_by()
        for qs, column in ((rollup, "count"), (deltas, "delta"))
    ]
    return [(row.get("k"), row["s"], row["n"]) for row in parts[0].union(parts[1], all=True)]


def _narrowed(qs: QuerySet[Any], scope: _Scope) -> QuerySet[Any]:
    """Survey, channel and the period (local days) — ``day`` is a field or an annotation."""
    if scope.survey is not None:
        qs = qs.filter(survey=scope.survey)
    if scope.channel is not None:
        qs = qs.filter(channel=scope.channel)
    if scope.since is not None:
        qs = qs.filter(day__gte=scope.since)
    if scope.until is not None:
        qs = qs.filter(day__lte=scope.until)
    return qs


def _responses_rows(scope: _Scope, key: str | None) -> list[tuple[Any, int, int]]:
    """Counts from the responses table: segments by a contact property, or everything while
    the rollup is being re-bucketed. One aggregate query; the time range uses the index."""
    qs: QuerySet[Any] = Response.objects.for_company(scope.company)
    # The index narrows by instant (a day of slack each side for any UTC offset); the local
    # day then decides exactly, like the rollup's buckets.
    if scope.since is not None:
        qs = qs.filter(created_at__gte=_instant(scope.since, scope.zone) - timedelta(days=1))
    if scope.until is not None:
        qs = qs.filter(created_at__lt=_instant(scope.until, scope.zone) + timedelta(days=2))
    qs = _narrowed(qs.annotate(day=TruncDate("created_at", tzinfo=scope.zone)), scope)
    group: dict[str, Any]
    if key is None:
        group = {}
    elif key in TRENDS:
        group = {"k": _day_key("day", key)}
    elif key in ("channel", "language"):
        group = {"k": F(key)}
    elif key == "survey":
        group = {"k": F("survey_id")}
    else:
        name = key.removeprefix(PROPERTY_PREFIX)
        group = {"k": KeyTextTransform(name, "contact_properties")}
    rows = qs.values(**group, s=F("score")).annotate(n=Count("id")).order_by()
    return [(row.get("k"), row["s"], row["n"]) for row in rows]


def _instant(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)
