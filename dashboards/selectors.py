"""Reads of the dashboards app: NPS figures over a period, its trend and segments.

Every figure comes from counts per score (design §4) fetched by ONE aggregate statement for
the period, the previous one and the same days a year ago, whose size depends on the number
of weeks or months asked (not on the number of answers, nor on the number of days): whole
weeks or months come from their span rows, the days at the edges from day rows, plus the
deltas not folded yet, all in one UNION ALL (one snapshot), so figures are exact and current.
Segments by channel, survey or language come from the rollup too; segments by a contact
property aggregate the responses table in SQL (properties are not rolled up: that query grows
with the answers in the period). Periods are whole days in the company's time zone.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypedDict

from django.db.models import CharField, Count, DateField, F, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from companies.models import Company
from dashboards.metrics import Comparison, Interval, NpsReport, nps_compare, nps_report
from dashboards.models import (
    PropertyRollup,
    PropertyRollupBuilt,
    Rollup,
    RollupDelta,
    RollupSpan,
    RollupZone,
)
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


# Which period a row counts for (``_Ask.tag``).
NOW, PREVIOUS, YEAR_AGO, SEGMENT = "now", "previous", "year_ago", "segment"
Level = Literal["day", "week", "month"]
# Counts per score by (period tag, trend bucket or None, segment value or None).
_Tagged = dict[tuple[str, Any, Any], Counts]


@dataclass(frozen=True)
class _Ask:
    """One period wanted from the counts, grouped by a trend bucket and/or a segment."""

    tag: str
    since: date | None
    until: date | None  # inclusive
    trend: Trend | None
    segment: str | None


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
    rolled = segment if segment in SEGMENT_KINDS else None
    asks = [_Ask(NOW, since, until, trend, None)]
    # Segments in the same statement: by a kind, or by a property the company rolls up.
    by_property = bool(segment) and rolled is None and not live
    by_property = by_property and _property_built(
        company, str(segment).removeprefix(PROPERTY_PREFIX)
    )
    if rolled is not None or by_property:
        asks.append(_Ask(SEGMENT, since, until, None, segment))
    if since is not None and until is not None:
        length = timedelta(days=(until - since).days + 1)
        asks.append(_Ask(PREVIOUS, since - length, until - length, None, None))
        if year_ago:
            asks.append(_Ask(YEAR_AGO, _year_back(since), _year_back(until), None, None))
    counts = _tagged_counts(scope, asks, live=live)
    current = _sum(_grouped(counts, NOW, by_bucket=False).values())
    figures: Metrics = {
        **_period_figures(current, since, until),
        "previous": None,
        "year_ago": None,
        "trend": None,
        "segments": None,
        "segments_hidden": 0,
    }
    for ask in asks:
        if ask.tag == PREVIOUS:
            figures["previous"] = _compared(current, counts, ask)
        elif ask.tag == YEAR_AGO:
            figures["year_ago"] = _compared(current, counts, ask)
    if trend is not None:
        last = until or company_today(company)
        figures["trend"] = _trend_points(_grouped(counts, NOW, by_bucket=True), trend, since, last)
    if segment:
        per_value = _per_segment_value(scope, segment, counts, current, by_property=by_property)
        segments = _segments(scope, segment, per_value)
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


def _compared(current: Counts, counts: _Tagged, ask: _Ask) -> PreviousFigures:
    earlier = _sum(_grouped(counts, ask.tag, by_bucket=False).values())
    test: Comparison | None = nps_compare(current, earlier)
    return {
        **_period_figures(earlier, ask.since, ask.until),
        "difference": test["difference"] if test else None,
        "difference_ci95": test["ci95"] if test else None,
        "z": test["z"] if test else None,
        "p_value": test["p_value"] if test else None,
        "significant": test["significant"] if test else False,
    }


def _year_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


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


def _segments(scope: _Scope, segment: str, counts: dict[Any, Counts]) -> list[SegmentFigures]:
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
        ids = [int(value) for value in values if value is not None]
        surveys = Survey.objects.for_company(company).filter(pk__in=ids)
        return {str(s.pk): (s.public_id, s.name) for s in surveys}
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


def _per_segment_value(
    scope: _Scope, segment: str, counts: _Tagged, current: Counts, *, by_property: bool
) -> dict[Any, Counts]:
    if by_property:  # the property's rollup was read with the period
        return _property_groups(current, _grouped(counts, SEGMENT, by_bucket=False))
    if segment in SEGMENT_KINDS:  # read with the period
        return _grouped(counts, SEGMENT, by_bucket=False)
    # A property that is not rolled up: from the responses table.
    ask = _Ask(NOW, scope.since, scope.until, None, segment)
    return _grouped(_tagged_counts(scope, [ask], live=True), NOW, by_bucket=False)


def _property_groups(total: Counts, per_value: dict[Any, Counts]) -> dict[Any, Counts]:
    """Counts per property value; the answers without one are the period's total less those."""
    groups = {value: n for value, n in per_value.items() if value is not None}
    rest = [total[score] - sum(n[score] for n in groups.values()) for score in range(11)]
    if any(rest):
        groups[None] = rest
    return groups


def _property_built(company: Company, name: str) -> bool:
    return PropertyRollupBuilt.objects.for_company(company).filter(name=name).exists()


def _grouped(counts: _Tagged, tag: str, *, by_bucket: bool) -> dict[Any, Counts]:
    """The counts of one period by trend bucket (``by_bucket``) or by segment value."""
    out: dict[Any, Counts] = defaultdict(lambda: [0] * 11)
    for (row_tag, bucket, value), per_score in counts.items():
        if row_tag == tag:
            target = out[bucket if by_bucket else value]
            for score, n in enumerate(per_score):
                target[score] += n
    return dict(out)


def _tagged_counts(scope: _Scope, asks: list[_Ask], *, live: bool) -> _Tagged:
    """Counts per score for every asked period in ONE statement (UNION ALL, one snapshot, so
    a fold committing meanwhile cannot make an answer count twice or never).

    From the rollups: each period is read as day rows at its edges and week or month rows for
    the whole weeks or months inside (``_pieces``), plus the deltas not folded yet; from the
    responses table instead while the rollup is being re-bucketed (``live``) or for a
    segment by a contact property.
    """
    parts: list[QuerySet[Any]] = []
    for ask in asks:
        if live:
            parts.append(_part(_responses_source(scope, ask), ask, "day", Count("id")))
            continue
        if ask.segment is not None and ask.segment not in SEGMENT_KINDS:
            name = ask.segment.removeprefix(PROPERTY_PREFIX)
            for level, first, last in _pieces(ask):
                source = _property_source(scope, name, level, first, last)
                parts.append(_part(source, ask, "start", key=F("value")))
            key = KeyTextTransform(name, "properties")
            parts.append(_part(_delta_source(scope, ask), ask, "day", Sum("delta"), key=key))
            continue
        for level, first, last in _pieces(ask):
            parts.append(_part(_rollup_source(scope, level, first, last), ask, _DATE[level]))
        parts.append(_part(_delta_source(scope, ask), ask, "day", Sum("delta")))
    rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    counts: _Tagged = defaultdict(lambda: [0] * 11)
    # Rows come by day or span start (no per-row date conversion in SQL): bucketed here.
    trends = {ask.tag: ask.trend for ask in asks}
    for row in rows:
        trend, day = trends[row["t"]], row["b"]
        bucket = _bucket_start(day, trend) if trend is not None and day is not None else None
        counts[(row["t"], bucket, row["g"])][row["s"]] += int(row["n"])
    return dict(counts)


_DATE: dict[Level, str] = {"day": "day", "week": "start", "month": "start"}


def _pieces(ask: _Ask) -> list[tuple[Level, date | None, date | None]]:
    """The rows that make up ``ask``'s days: (level, first, last day or span start).

    With a day trend, day rows. With a week or month trend, that level's rows for the whole
    weeks or months inside the period and day rows for the days before and after them, so
    every row falls in one trend bucket. Without a trend, whichever of the two reads fewer
    rows (a year: 52 weeks and a few days, or 12 months).
    """
    if ask.trend == "day":
        return [("day", ask.since, ask.until)]
    if ask.trend is not None:
        return _split(ask.since, ask.until, "week" if ask.trend == "week" else "month")
    weeks, months = _split(ask.since, ask.until, "week"), _split(ask.since, ask.until, "month")
    return weeks if _rows_read(weeks) < _rows_read(months) else months


def _split(
    since: date | None, until: date | None, level: Literal["week", "month"]
) -> list[tuple[Level, date | None, date | None]]:
    first = since
    if since is not None and _bucket_start(since, level) != since:
        first = _bucket_after(_bucket_start(since, level), level)
    # Whole spans start before ``end``: the span holding the day after ``until`` is not whole.
    end = None if until is None else _bucket_start(until + timedelta(days=1), level)
    if first is not None and end is not None and first >= end:
        return [("day", since, until)]
    pieces: list[tuple[Level, date | None, date | None]] = []
    if since is not None and first is not None and since < first:
        pieces.append(("day", since, first - timedelta(days=1)))
    last = None if end is None else _bucket_start(end - timedelta(days=1), level)
    pieces.append((level, first, last))  # the starts of the first and last whole spans
    if end is not None and until is not None and end <= until:
        pieces.append(("day", end, until))
    return pieces


def _rows_read(pieces: list[tuple[Level, date | None, date | None]]) -> float:
    """Buckets a plan reads (an open range counts as endless: months win for all time)."""
    total = 0.0
    for level, first, last in pieces:
        if first is None or last is None:
            return float("inf") if level == "week" else 1e9
        days = (last - first).days
        total += days + 1 if level == "day" else days // (7 if level == "week" else 28) + 1
    return total


def _part(
    qs: QuerySet[Any], ask: _Ask, date_field: str, total: Any = None, key: Any = None
) -> QuerySet[Any]:
    """``qs`` summed by (period tag, day or span start, segment value, score); ``key`` is the
    segment value's expression when it is not the segment's own column."""
    bucket = F(date_field) if ask.trend is not None else Value(None, output_field=DateField())
    return (
        qs.values(
            t=Value(ask.tag),
            b=bucket,
            g=key if key is not None else _segment_key(ask.segment),
            s=F("score"),
        )
        .annotate(n=total if total is not None else Sum("count"))
        .order_by()
    )


def _segment_key(segment: str | None) -> Any:
    if segment is None:
        return Value(None, output_field=CharField())
    if segment in ("channel", "language"):
        return F(segment)
    if segment == "survey":  # as text, like every segment value (one column in the UNION)
        return Cast("survey_id", CharField())
    return KeyTextTransform(segment.removeprefix(PROPERTY_PREFIX), "contact_properties")


def _narrowed(qs: QuerySet[Any], scope: _Scope) -> QuerySet[Any]:
    if scope.survey is not None:
        qs = qs.filter(survey=scope.survey)
    if scope.channel is not None:
        qs = qs.filter(channel=scope.channel)
    return qs


def _in_days(qs: QuerySet[Any], field: str, first: date | None, last: date | None) -> Any:
    if first is not None:
        qs = qs.filter(**{f"{field}__gte": first})
    if last is not None:
        qs = qs.filter(**{f"{field}__lte": last})
    return qs


def _rollup_source(
    scope: _Scope, level: Level, first: date | None, last: date | None
) -> QuerySet[Any]:
    if level == "day":
        return _in_days(
            _narrowed(Rollup.objects.for_company(scope.company), scope), "day", first, last
        )
    spans = RollupSpan.objects.for_company(scope.company).filter(span=level)
    return _in_days(_narrowed(spans, scope), "start", first, last)


def _property_source(
    scope: _Scope, name: str, level: Level, first: date | None, last: date | None
) -> QuerySet[Any]:
    rows = PropertyRollup.objects.for_company(scope.company).filter(name=name, span=level)
    return _in_days(_narrowed(rows, scope), "start", first, last)


def _by_local_day(qs: QuerySet[Any], scope: _Scope, ask: _Ask) -> QuerySet[Any]:
    """Rows with a ``created_at`` on ``ask``'s local days. The index narrows by instant (a day
    of slack each side for any UTC offset); the local day then decides exactly, like the
    rollup's buckets."""
    if ask.since is not None:
        qs = qs.filter(created_at__gte=_instant(ask.since, scope.zone) - timedelta(days=1))
    if ask.until is not None:
        qs = qs.filter(created_at__lt=_instant(ask.until, scope.zone) + timedelta(days=2))
    qs = qs.annotate(day=TruncDate("created_at", tzinfo=scope.zone))
    return _in_days(_narrowed(qs, scope), "day", ask.since, ask.until)


def _delta_source(scope: _Scope, ask: _Ask) -> QuerySet[Any]:
    # The local day of a delta is computed, not indexed: bounding its instant lets the
    # (company, created_at) index skip every other pending (or just folded, dead) delta.
    return _by_local_day(RollupDelta.objects.for_company(scope.company), scope, ask)


def _responses_source(scope: _Scope, ask: _Ask) -> QuerySet[Any]:
    return _by_local_day(Response.objects.for_company(scope.company), scope, ask)


def _instant(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)
