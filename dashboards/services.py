"""Writes of the dashboards app: folding rollup deltas, re-bucketing a company's rollup.

Only these two functions write ``Rollup`` rows, and never at the same time: on PostgreSQL they
take one transaction-level advisory lock (the fold skips its turn when it is held, a rebuild
waits). Answers themselves only ever insert deltas (database triggers, see models.py).

Time-zone changes: rollup days are in the time zone recorded in ``RollupZone``. When a
company changes its time zone, the next fold re-buckets the company's whole history from the
responses table (``rollup_rebuild``), so day, week and month figures always follow the
company's current time zone; until that fold, reads count live from the responses table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, F
from django.db.models.functions import TruncDate

from companies.models import Company
from dashboards.models import (
    DashboardSettings,
    PropertyRollup,
    PropertyRollupBuilt,
    Rollup,
    RollupDelta,
    RollupSpan,
    RollupZone,
)
from responses.models import Response

# Deltas per fold statement: a few seconds of a very busy day; the fold loops until done.
FOLD_BATCH = 50_000
# Arbitrary, fixed: the advisory lock key that serializes writers of dashboards_rollup.
ROLLUP_LOCK_KEY = 7_310_583_117_000_001

_SYSTEM = "rollup maintenance spans every company"


def rollup_fold(*, batch_size: int = FOLD_BATCH) -> int:
    """Move pending deltas into the rollup; the number of deltas folded.

    Companies whose time zone changed since their rollup was built are re-bucketed first.
    """
    for company_id in _zone_changed_company_ids():
        rollup_rebuild(company=Company.objects.get(pk=company_id))
    _properties_sync()
    folded = 0
    while True:
        moved = (
            _fold_batch_postgres(batch_size)
            if connection.vendor == "postgresql"
            else _fold_batch_python(batch_size)
        )
        folded += max(moved, 0)
        if moved < batch_size:  # done, or -1: another fold holds the lock
            return folded


def rollup_rebuild(*, company: Company) -> None:
    """Recount ``company``'s rollup from its responses, in its current time zone.

    Race-free against answers arriving meanwhile: the company's pending deltas are deleted
    and its responses counted in ONE statement (one snapshot), so an answer committed after
    that snapshot is in neither and its delta stays pending for the next fold.
    """
    with transaction.atomic():
        time_zone = Company.objects.values_list("time_zone", flat=True).get(pk=company.pk)
        if connection.vendor == "postgresql":
            _rebuild_postgres(company.pk, time_zone)
        else:
            _rebuild_python(company, time_zone)
        RollupZone.objects.unscoped(reason=_SYSTEM).update_or_create(
            company_id=company.pk, defaults={"time_zone": time_zone}
        )
        # Built in the old zone's days: the next fold builds them again (reads count live).
        PropertyRollup.objects.for_company(company).delete()
        PropertyRollupBuilt.objects.for_company(company).delete()


def _properties_sync() -> None:
    """Build the segment properties companies marked; drop those they no longer mark."""
    wanted: set[tuple[int, str]] = set()
    for company_id, names in (
        DashboardSettings.objects.unscoped(reason=_SYSTEM)
        .exclude(segment_properties=[])
        .values_list("company_id", "segment_properties")
    ):
        wanted.update((company_id, str(name)) for name in names or [])
    built = set(
        PropertyRollupBuilt.objects.unscoped(reason=_SYSTEM).values_list("company_id", "name")
    )
    for company_id, name in built - wanted:
        with transaction.atomic():
            _lock_writers()
            PropertyRollup.objects.unscoped(reason=_SYSTEM).filter(
                company_id=company_id, name=name
            ).delete()
            PropertyRollupBuilt.objects.unscoped(reason=_SYSTEM).filter(
                company_id=company_id, name=name
            ).delete()
    for company_id, name in sorted(wanted - built):
        _property_build(company_id, name)


def _property_build(company_id: int, name: str) -> None:
    with transaction.atomic():
        _lock_writers()
        zone = (
            RollupZone.objects.unscoped(reason=_SYSTEM)
            .filter(company_id=company_id)
            .values_list("time_zone", flat=True)
            .first()
        ) or Company.objects.values_list("time_zone", flat=True).get(pk=company_id)
        PropertyRollup.objects.unscoped(reason=_SYSTEM).filter(
            company_id=company_id, name=name
        ).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    _PROPERTY_BUILD_SQL, {"company": company_id, "name": name, "zone": zone}
                )
        else:
            _property_build_python(company_id, name, ZoneInfo(zone))
        PropertyRollupBuilt.objects.create(company_id=company_id, name=name, time_zone=zone)


def _lock_writers() -> None:
    """Wait for the rollup writers' lock (PostgreSQL; SQLite has one writer at a time)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])


def property_text(value: object) -> str | None:
    """A JSON property value as PostgreSQL's ``->>`` gives it (None for null or missing)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _zone_changed_company_ids() -> list[int]:
    return list(
        RollupZone.objects.unscoped(reason=_SYSTEM)
        .exclude(time_zone=F("company__time_zone"))
        .values_list("company_id", flat=True)
    )


# --- PostgreSQL: set-based, one statement per batch -------------------------------------------

# Deltas of a company that no longer exists are dropped by the inner join. The zone of a
# company folded for the first time is recorded in the same statement that buckets with it.
_FOLD_SQL = """
WITH moved AS (
    DELETE FROM dashboards_rollupdelta
    WHERE id IN (SELECT id FROM dashboards_rollupdelta ORDER BY id LIMIT %(batch)s)
    RETURNING company_id, survey_id, created_at, channel, language, score, delta, properties
), zoned AS (
    SELECT m.company_id, m.survey_id, (m.created_at AT TIME ZONE
               COALESCE(z.time_zone, c.time_zone))::date AS day,
           m.channel, m.language, m.score, m.delta, m.properties,
           COALESCE(z.time_zone, c.time_zone) AS time_zone, z.company_id IS NULL AS first_fold
    FROM moved m
    JOIN companies_company c ON c.id = m.company_id
    LEFT JOIN dashboards_rollupzone z ON z.company_id = m.company_id
), new_zones AS (
    INSERT INTO dashboards_rollupzone (company_id, time_zone)
    SELECT DISTINCT company_id, time_zone FROM zoned WHERE first_fold
    ON CONFLICT (company_id) DO NOTHING
), days AS (
    INSERT INTO dashboards_rollup AS r (company_id, survey_id, day, channel, language, score, count)
    SELECT company_id, survey_id, day, channel, language, score, SUM(delta)
    FROM zoned
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING SUM(delta) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (company_id, survey_id, day, channel, language, score)
    DO UPDATE SET count = r.count + EXCLUDED.count
    RETURNING r.id, r.count
), spans AS (
    INSERT INTO dashboards_rollupspan AS r
        (company_id, survey_id, span, start, channel, language, score, count)
    SELECT company_id, survey_id, s.span, date_trunc(s.span, day)::date, channel, language,
           score, SUM(delta)
    FROM zoned CROSS JOIN (VALUES ('week'), ('month')) AS s (span)
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING SUM(delta) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (company_id, survey_id, span, start, channel, language, score)
    DO UPDATE SET count = r.count + EXCLUDED.count
    RETURNING r.id, r.count
), props AS (
    INSERT INTO dashboards_propertyrollup AS r
        (company_id, survey_id, span, start, channel, name, value, score, count)
    SELECT z.company_id, z.survey_id, s.span, date_trunc(s.span, z.day)::date, z.channel,
           b.name, z.properties ->> b.name, z.score, SUM(z.delta)
    FROM zoned z
    JOIN dashboards_propertyrollupbuilt b ON b.company_id = z.company_id
    CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS s (span)
    WHERE z.properties ->> b.name IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    HAVING SUM(z.delta) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (company_id, survey_id, span, start, channel, name, value, score)
    DO UPDATE SET count = r.count + EXCLUDED.count
    RETURNING r.id, r.count
)
SELECT (SELECT count(*) FROM moved), ARRAY(SELECT id FROM days WHERE count = 0),
       ARRAY(SELECT id FROM spans WHERE count = 0), ARRAY(SELECT id FROM props WHERE count = 0)
"""

# A segment property's rows, from the company's responses LESS its pending deltas (which the
# fold adds later): one statement, one snapshot, so every answer counts exactly once.
_PROPERTY_BUILD_SQL = """
INSERT INTO dashboards_propertyrollup
    (company_id, survey_id, span, start, channel, name, value, score, count)
SELECT company_id, survey_id, s.span, date_trunc(s.span, day)::date, channel, %(name)s, value,
       score, SUM(n)
FROM (
    SELECT company_id, survey_id, (created_at AT TIME ZONE %(zone)s)::date AS day, channel,
           contact_properties ->> %(name)s AS value, score, 1 AS n
    FROM responses_response
    WHERE company_id = %(company)s AND contact_properties ->> %(name)s IS NOT NULL
    UNION ALL
    SELECT company_id, survey_id, (created_at AT TIME ZONE %(zone)s)::date, channel,
           properties ->> %(name)s, score, -delta
    FROM dashboards_rollupdelta
    WHERE company_id = %(company)s AND properties ->> %(name)s IS NOT NULL
) AS counted
CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS s (span)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
HAVING SUM(n) <> 0
"""

_REBUILD_SQL = """
WITH gone AS (DELETE FROM dashboards_rollupdelta WHERE company_id = %(company)s)
INSERT INTO dashboards_rollup (company_id, survey_id, day, channel, language, score, count)
SELECT company_id, survey_id, (created_at AT TIME ZONE %(zone)s)::date, channel, language, score,
       count(*)
FROM responses_response
WHERE company_id = %(company)s
GROUP BY 1, 2, 3, 4, 5, 6
"""

# Week and month rows summed from the company's day rows (just rebuilt, same transaction).
_REBUILD_SPANS_SQL = """
INSERT INTO dashboards_rollupspan
    (company_id, survey_id, span, start, channel, language, score, count)
SELECT company_id, survey_id, s.span, date_trunc(s.span, day)::date, channel, language, score,
       SUM(count)
FROM dashboards_rollup CROSS JOIN (VALUES ('week'), ('month')) AS s (span)
WHERE company_id = %(company)s
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


def _fold_batch_postgres(batch_size: int) -> int:
    """Deltas folded by one batch, or -1 when another fold or rebuild holds the lock."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return -1
        cursor.execute(_FOLD_SQL, {"batch": batch_size})
        moved, *emptied_ids = cursor.fetchone()
        # Keys whose answers all went (deleted or moved): keep the tables to live keys.
        for table, emptied in zip(
            ("rollup", "rollupspan", "propertyrollup"), emptied_ids, strict=True
        ):
            if emptied:
                cursor.execute(
                    f"DELETE FROM dashboards_{table} WHERE id = ANY(%s) AND count = 0",  # noqa: S608 (fixed names)
                    [emptied],
                )
        return int(moved)


def _rebuild_postgres(company_id: int, time_zone: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
        cursor.execute("DELETE FROM dashboards_rollup WHERE company_id = %s", [company_id])
        cursor.execute("DELETE FROM dashboards_rollupspan WHERE company_id = %s", [company_id])
        cursor.execute(_REBUILD_SQL, {"company": company_id, "zone": time_zone})
        cursor.execute(_REBUILD_SPANS_SQL, {"company": company_id})


# --- SQLite (embedded): one writer at a time, so the plain way is race-free -------------------

_UPSERT_SQLITE = """
INSERT INTO dashboards_rollup (company_id, survey_id, day, channel, language, score, count)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (company_id, survey_id, day, channel, language, score)
DO UPDATE SET count = dashboards_rollup.count + excluded.count
"""

_UPSERT_SPAN_SQLITE = """
INSERT INTO dashboards_rollupspan
    (company_id, survey_id, span, start, channel, language, score, count)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (company_id, survey_id, span, start, channel, language, score)
DO UPDATE SET count = dashboards_rollupspan.count + excluded.count
"""

RollupKey = tuple[int, int, date, str, str, int]
SpanKey = tuple[int, int, str, date, str, str, int]


def _span_sums(days: dict[RollupKey, int]) -> dict[SpanKey, int]:
    """Day counts summed per ISO week (from its Monday) and calendar month (from the 1st)."""
    sums: dict[SpanKey, int] = defaultdict(int)
    for (company_id, survey_id, day, channel, language, score), n in days.items():
        for span, start in (
            (RollupSpan.Span.WEEK, day - timedelta(days=day.weekday())),
            (RollupSpan.Span.MONTH, day.replace(day=1)),
        ):
            sums[(company_id, survey_id, span, start, channel, language, score)] += n
    return sums


_DELTA_FIELDS = (
    "id",
    "company_id",
    "survey_id",
    "created_at",
    "channel",
    "language",
    "score",
    "delta",
    "properties",
)
PropertyKey = tuple[int, int, str, date, str, str, str, int]
_UPSERT_PROPERTY_SQLITE = """
INSERT INTO dashboards_propertyrollup
    (company_id, survey_id, span, start, channel, name, value, score, count)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (company_id, survey_id, span, start, channel, name, value, score)
DO UPDATE SET count = dashboards_propertyrollup.count + excluded.count
"""


def _property_sums(
    rows: list[tuple[int, int, date, str, int, object, int]], names: dict[int, list[str]]
) -> dict[PropertyKey, int]:
    """(company, survey, local day, channel, score, properties, n) → counts per property value,
    per day, week and month, for each company's built property names."""
    sums: dict[PropertyKey, int] = defaultdict(int)
    for company_id, survey_id, day, channel, score, properties, n in rows:
        if not isinstance(properties, dict):
            continue
        for name in names.get(company_id, ()):
            value = property_text(properties.get(name))
            if value is None:
                continue
            for span, start in (
                ("day", day),
                ("week", day - timedelta(days=day.weekday())),
                ("month", day.replace(day=1)),
            ):
                sums[(company_id, survey_id, span, start, channel, name, value, score)] += n
    return sums


def _property_build_python(company_id: int, name: str, zone: ZoneInfo) -> None:
    rows: list[tuple[int, int, date, str, int, object, int]] = [
        (company_id, survey_id, created.astimezone(zone).date(), channel, score, props, 1)
        for survey_id, created, channel, score, props in Response.objects.unscoped(reason=_SYSTEM)
        .filter(company_id=company_id)
        .values_list("survey_id", "created_at", "channel", "score", "contact_properties")
    ]
    rows += [
        (company_id, survey_id, created.astimezone(zone).date(), channel, score, props, -delta)
        for survey_id, created, channel, score, props, delta in RollupDelta.objects.unscoped(
            reason=_SYSTEM
        )
        .filter(company_id=company_id)
        .values_list("survey_id", "created_at", "channel", "score", "properties", "delta")
    ]
    sums = _property_sums(rows, {company_id: [name]})
    with connection.cursor() as cursor:
        cursor.executemany(
            _UPSERT_PROPERTY_SQLITE, [(*key, n) for key, n in sorted(sums.items()) if n]
        )


def _fold_batch_python(batch_size: int) -> int:
    with transaction.atomic():
        deltas = list(
            RollupDelta.objects.unscoped(reason=_SYSTEM)
            .order_by("id")
            .values_list(*_DELTA_FIELDS)[:batch_size]
        )
        if not deltas:
            return 0
        # SQLite gives a new row a larger id than any existing one: "≤ last" is this batch.
        RollupDelta.objects.unscoped(reason=_SYSTEM).filter(id__lte=deltas[-1][0]).delete()
        zones = _zones_for({d[1] for d in deltas})
        sums: dict[RollupKey, int] = defaultdict(int)
        rows: list[tuple[int, int, date, str, int, object, int]] = []
        for (
            _id,
            company_id,
            survey_id,
            created_at,
            channel,
            language,
            score,
            delta,
            props,
        ) in deltas:
            zone = zones.get(company_id)
            if zone is None:  # the company was deleted
                continue
            day = created_at.astimezone(zone).date()
            sums[(company_id, survey_id, day, channel, language, score)] += delta
            rows.append((company_id, survey_id, day, channel, score, props, delta))
        spans = _span_sums(sums)
        names: dict[int, list[str]] = defaultdict(list)
        for company_id, name in (
            PropertyRollupBuilt.objects.unscoped(reason=_SYSTEM)
            .filter(company_id__in=zones.keys())
            .values_list("company_id", "name")
        ):
            names[company_id].append(name)
        properties = _property_sums(rows, names)
        with connection.cursor() as cursor:
            for sql, keyed in (
                (_UPSERT_SQLITE, sums),
                (_UPSERT_SPAN_SQLITE, spans),
                (_UPSERT_PROPERTY_SQLITE, properties),
            ):
                cursor.executemany(sql, [(*key, n) for key, n in sorted(keyed.items()) if n])
        for model in (Rollup, RollupSpan, PropertyRollup):
            model.objects.unscoped(reason=_SYSTEM).filter(
                company_id__in=zones.keys(), count=0
            ).delete()
        return len(deltas)


def _zones_for(company_ids: set[int]) -> dict[int, ZoneInfo]:
    """Each existing company's rollup zone, recording it for companies folded the first time."""
    recorded = dict(
        RollupZone.objects.unscoped(reason=_SYSTEM)
        .filter(company_id__in=company_ids)
        .values_list("company_id", "time_zone")
    )
    current = dict(Company.objects.filter(pk__in=company_ids).values_list("pk", "time_zone"))
    new = {pk: tz for pk, tz in current.items() if pk not in recorded}
    RollupZone.objects.bulk_create(
        [RollupZone(company_id=pk, time_zone=tz) for pk, tz in new.items()]
    )
    return {pk: ZoneInfo(recorded.get(pk, tz)) for pk, tz in current.items()}


def _rebuild_python(company: Company, time_zone: str) -> None:
    # Deleting first takes SQLite's write lock: no answer can land until this commits.
    RollupDelta.objects.for_company(company).delete()
    Rollup.objects.for_company(company).delete()
    RollupSpan.objects.for_company(company).delete()
    counts = (
        Response.objects.for_company(company)
        .annotate(day=TruncDate("created_at", tzinfo=ZoneInfo(time_zone)))
        .values_list("survey_id", "day", "channel", "language", "score")
        .annotate(n=Count("id"))
        .order_by()
    )
    days: dict[RollupKey, int] = {
        (company.pk, survey_id, day, channel, language, score): n
        for survey_id, day, channel, language, score, n in counts
    }
    Rollup.objects.bulk_create(
        Rollup(
            company=company,
            survey_id=survey_id,
            day=day,
            channel=channel,
            language=language,
            score=score,
            count=n,
        )
        for (_company, survey_id, day, channel, language, score), n in days.items()
    )
    RollupSpan.objects.bulk_create(
        RollupSpan(
            company=company,
            survey_id=survey_id,
            span=span,
            start=start,
            channel=channel,
            language=language,
            score=score,
            count=n,
        )
        for (_company, survey_id, span, start, channel, language, score), n in _span_sums(
            days
        ).items()
    )
