"""Dashboard figures at scale: the metrics API and the dashboard page on rollups.

Loads ``BENCH_RESPONSES`` answers (default 10,000,000) across ``BENCH_COMPANIES`` companies
(default 1,000) with PostgreSQL COPY into the responses table itself, so the rollup triggers
fire as for any insert; one company has ``BENCH_LARGE`` answers (default 1,000,000) over two
years, one has 10,000, the others share the rest. The pending deltas are folded as the beat
task would, and the tables vacuumed as autovacuum would after such a fold. Then, for the
large and the small company, ``ROUNDS`` times each:

* the metrics API: ``GET /api/v1/metrics/`` over 365 days, weekly trend, segments by channel;
* the dashboard page with the same options (logged-in owner);
* the baseline: the same figures (counts per week and score, per channel and score) computed
  by a plain SQL aggregate over the responses table, as a dashboard without rollups would.

Prints p50/p95 of each and, last, two ratios: baseline p95 / API p95 for the large company
(goal ≥ 10), and API p95 large / small (goal ≤ 1.5: cost flat in the data size). Goal: API
p95 ≤ 50 ms. Segments by a contact property read the responses table (they are not rolled
up unless the company marks them, as both measured companies do for ``city``): their timing
is printed too, with its own large / small ratio. Requests go through Django's test client in this
process (no HTTP server): the figures are the application's own cost.

Run: ``python -m bench dashboard`` (``BENCH_RESPONSES=1000000`` for a quicker run).
"""

from __future__ import annotations

import io
import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._django import bench_database

ROUNDS = 40
SMALL = 10_000
CITIES = ("Almaty", "Astana", "Amsterdam", "Rotterdam", "Moscow", "London", "Berlin", "Paris")
CHANNELS = ("email", "email", "email", "sms", "link")
COLUMNS = (
    "company_id",
    "survey_id",
    "public_id",
    "score",
    "category",
    "comment",
    "extra_answers",
    "channel",
    "language",
    "contact_properties",
    "invitation_properties",
    "created_at",
    "updated_at",
)


class _Rows(io.TextIOBase):
    """A read()-able stream of COPY text lines made on the fly (never all in memory)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        want = size if size and size > 0 else 1 << 20
        parts = [self.buffer]
        length = len(self.buffer)
        for line in self.lines:
            parts.append(line)
            length += len(line)
            if length >= want:
                break
        text = "".join(parts)
        self.buffer = text[want:]
        return text[:want]


def _lines(plan: list[tuple[int, int, int, int]], seed: int) -> Iterator[str]:
    """COPY lines for (company id, survey id, answers, days back) entries."""
    rng = random.Random(seed)  # noqa: S311 (benchmark data)
    now = datetime.now(UTC)
    for company_id, survey_id, count, days in plan:
        for n in range(count):
            score = min(10, max(0, round(rng.gauss(7.8, 2.2))))
            category = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
            created = now - timedelta(seconds=rng.randrange(days * 86_400))
            stamp = created.isoformat()
            properties = json.dumps({"city": CITIES[n % len(CITIES)]})
            yield (
                f"{company_id}\t{survey_id}\tb{company_id}x{n}\t{score}\t{category}\t\t{{}}\t"
                f"{rng.choice(CHANNELS)}\ten\t{properties}\t{{}}\t{stamp}\t{stamp}\n"
            )


def _load(total: int, companies: int, large: int) -> tuple[Any, Any, str, str, Any]:
    """The companies, their surveys and answers; returns the large and small company, their
    API keys and an owner client factory input."""
    from django.db import connection

    from companies.models import Company
    from companies.services import api_key_create, company_create, user_create
    from dashboards.models import DashboardSettings
    from dashboards.services import rollup_fold
    from responses.models import Response
    from surveys.models import Survey, SurveyStatus

    password = secrets.token_urlsafe(16)
    owner = user_create(email="owner@dashboard.bench", password=password)
    big = company_create(name="Large", owner=owner, time_zone="Asia/Almaty")
    small = company_create(name="Small", owner=owner, time_zone="Asia/Almaty")
    fillers = Company.objects.bulk_create(
        Company(name=f"Filler {i}", slug=f"filler-{i}", time_zone="Europe/Amsterdam")
        for i in range(companies - 2)
    )
    all_companies = [big, small, *fillers]
    # The large and the small company segment by city: rolled up (see DashboardSettings).
    DashboardSettings.objects.bulk_create(
        DashboardSettings(company=c, segment_properties=["city"]) for c in (big, small)
    )
    surveys = Survey.objects.bulk_create(
        Survey(company=c, name="Customers", status=SurveyStatus.ACTIVE) for c in all_companies
    )
    rest = max(0, total - large - SMALL)
    each = rest // max(1, len(fillers))
    plan = [(big.pk, surveys[0].pk, large, 730), (small.pk, surveys[1].pk, SMALL, 730)] + [
        (c.pk, s.pk, each, 365) for c, s in zip(fillers, surveys[2:], strict=True)
    ]
    table = connection.ops.quote_name(Response._meta.db_table)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN",
            _Rows(_lines(plan, seed=7)),
            size=1 << 20,
        )
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    folded = rollup_fold()
    fold_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        # What autovacuum does soon after a bulk fold: the folded deltas are dead tuples that
        # every delta read would otherwise wade through until then.
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("VACUUM ANALYZE dashboards_rollup")
        cursor.execute("VACUUM ANALYZE dashboards_rollupdelta")
    print(
        f"loaded {sum(p[2] for p in plan):,} answers for {len(all_companies):,} companies in "
        f"{loaded:.0f} s (COPY, rollup triggers on); folded {folded:,} deltas in "
        f"{fold_seconds:.0f} s",
        flush=True,
    )
    big_key = api_key_create(company=big, name="bench", role="viewer").key
    small_key = api_key_create(company=small, name="bench", role="viewer").key
    return big, small, big_key, small_key, (owner.email, password)


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    call()  # warm-up
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95


def _baseline(company: Any, since: datetime) -> Callable[[], Any]:
    """The same figures by a plain aggregate over the responses table."""
    from django.db import connection

    sql = (
        "SELECT date_trunc('week', created_at AT TIME ZONE %s) AS week, score, count(*) "
        "FROM responses_response WHERE company_id = %s AND created_at >= %s "
        "GROUP BY 1, 2"
    )
    segments = (
        "SELECT channel, score, count(*) FROM responses_response "
        "WHERE company_id = %s AND created_at >= %s GROUP BY 1, 2"
    )
    previous = (
        "SELECT score, count(*) FROM responses_response "
        "WHERE company_id = %s AND created_at >= %s AND created_at < %s GROUP BY 1"
    )

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [company.time_zone, company.pk, since])
            cursor.fetchall()
            cursor.execute(segments, [company.pk, since])
            cursor.fetchall()
            cursor.execute(previous, [company.pk, since - timedelta(days=365), since])
            cursor.fetchall()

    return run


def main() -> None:
    total = int(os.environ.get("BENCH_RESPONSES", "10000000"))
    companies = int(os.environ.get("BENCH_COMPANIES", "1000"))
    large = min(int(os.environ.get("BENCH_LARGE", "1000000")), total - SMALL)
    with bench_database():
        from django.test import Client
        from django.utils import timezone

        big, small, big_key, small_key, (email, password) = _load(total, companies, large)
        today = timezone.localdate()
        since = (today - timedelta(days=364)).isoformat()
        query = {"since": since, "until": today.isoformat(), "trend": "week", "segment": "channel"}
        page = {"period": "365", "trend": "week", "segment": "channel"}
        results: dict[str, tuple[float, float]] = {}
        for name, company, key in (("large", big, big_key), ("small", small, small_key)):
            api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
            web = Client()
            assert web.login(email=email, password=password)

            def api_call(api: Client = api) -> None:
                response = api.get("/api/v1/metrics/", query)
                assert response.status_code == 200, response.content

            def page_call(web: Client = web, company: Any = company) -> None:
                response = web.get(f"/c/{company.slug}/dashboard/", page)
                assert response.status_code == 200

            def property_call(api: Client = api) -> None:
                response = api.get("/api/v1/metrics/", {**query, "segment": "city"})
                assert response.status_code == 200

            results[f"api {name}"] = _timed(api_call)
            results[f"page {name}"] = _timed(page_call)
            results[f"api {name}, segments by a contact property"] = _timed(property_call)
            start = datetime.combine(today - timedelta(days=364), datetime.min.time(), UTC)
            results[f"plain SQL {name}"] = _timed(_baseline(company, start))
    for label, (p50, p95) in results.items():
        print(f"{label:<48} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms")
    api_large = results["api large"][1]
    print(f"API p95 large / small: {api_large / results['api small'][1]:.2f} (goal ≤ 1.5)")
    by_property = "segments by a contact property"
    print(
        f"API p95 large / small, {by_property}: "
        f"{results[f'api large, {by_property}'][1] / results[f'api small, {by_property}'][1]:.2f}"
    )
    print(f"API p95 large: {api_large * 1000:.1f} ms (goal ≤ 50 ms)")
    print(
        f"ratio plain SQL / API (p95, large company): "
        f"{results['plain SQL large'][1] / api_large:.1f} (goal ≥ 10)"
    )


if __name__ == "__main__":
    main()
