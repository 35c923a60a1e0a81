"""Rollups stay equal to a live count of the responses table, whatever happens to responses."""

from __future__ import annotations

import random
import threading
import zoneinfo
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from companies.models import Company
from dashboards import selectors, services
from dashboards.models import (
    DashboardSettings,
    PropertyRollup,
    PropertyRollupBuilt,
    Rollup,
    RollupDelta,
    RollupSpan,
    RollupZone,
)
from dashboards.selectors import metrics_for
from dashboards.services import rollup_fold, rollup_rebuild
from responses.models import Response, category_of
from responses.services import response_delete, response_record
from responses.tests.conftest import make_contact, make_invitation, make_survey

pytestmark = pytest.mark.django_db

Key = tuple[int, date, str, str, int]
LANGUAGES = ("en", "ru", "kk")


def live_counts(company: Company) -> Counter[Key]:
    """(survey, local day, channel, language, score) → answers, from the responses table."""
    zone = zoneinfo.ZoneInfo(company.time_zone)
    rows = Response.objects.for_company(company).values_list(
        "survey_id", "created_at", "channel", "language", "score"
    )
    return Counter(
        (survey_id, created.astimezone(zone).date(), channel, language, score)
        for survey_id, created, channel, language, score in rows
    )


def rolled_counts(company: Company) -> Counter[Key]:
    """The same from the rollup plus the deltas not folded yet (zeros dropped)."""
    zone = zoneinfo.ZoneInfo(company.time_zone)
    total: Counter[Key] = Counter()
    for survey_id, day, channel, language, score, n in Rollup.objects.for_company(
        company
    ).values_list("survey_id", "day", "channel", "language", "score", "count"):
        total[(survey_id, day, channel, language, score)] += n
    for survey_id, created, channel, language, score, n in RollupDelta.objects.for_company(
        company
    ).values_list("survey_id", "created_at", "channel", "language", "score", "delta"):
        total[(survey_id, created.astimezone(zone).date(), channel, language, score)] += n
    return Counter({k: n for k, n in total.items() if n})


def assert_spans_match_days(company: Company) -> None:
    """Week and month rows hold exactly the sums of the day rows they cover."""
    expected: Counter[tuple] = Counter()
    for survey_id, day, channel, language, score, n in Rollup.objects.for_company(
        company
    ).values_list("survey_id", "day", "channel", "language", "score", "count"):
        for span, start in (
            ("week", day - timedelta(days=day.weekday())),
            ("month", day.replace(day=1)),
        ):
            expected[(survey_id, span, start, channel, language, score)] += n
    rows = RollupSpan.objects.for_company(company).values_list(
        "survey_id", "span", "start", "channel", "language", "score", "count"
    )
    spans = Counter({row[:-1]: row[-1] for row in rows})
    assert spans == Counter({k: n for k, n in expected.items() if n})


def answer(survey, score: int, key: str, language: str = "en") -> Response:
    return response_record(
        invitation=None,
        survey=survey,
        score=score,
        channel="link",
        language=language,
        browser_key=key,
    )


@pytest.fixture(params=["sql", "python"])
def fold_path(request, monkeypatch):
    """Each test below runs with the PostgreSQL fold and with the portable one SQLite uses
    (here on PostgreSQL too; the embedded default runs it on SQLite)."""
    if request.param == "python":
        monkeypatch.setattr(services, "_fold_batch_postgres", services._fold_batch_python)
        monkeypatch.setattr(
            services,
            "_rebuild_postgres",
            lambda company_id, zone: services._rebuild_python(
                Company.objects.get(pk=company_id), zone
            ),
        )
    return request.param


def test_random_creates_changes_and_deletes_match_a_live_count(company, other_company, fold_path):  # noqa: PLR0912 (one branch per kind of edit)
    rng = random.Random(20261122)
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    surveys = [make_survey(company, name=f"S{i}") for i in range(3)]
    theirs = make_survey(other_company)
    contacts = [make_contact(company, email=f"c{i}@customer.test") for i in range(40)]
    base = datetime(2026, 6, 1, tzinfo=UTC)
    keys = 0
    for step in range(400):
        op = rng.random()
        responses = list(Response.objects.for_company(company).order_by("pk"))
        if op < 0.35 or not responses:
            keys += 1
            survey = rng.choice(surveys)
            if rng.random() < 0.5:
                invitation, _ = make_invitation(survey, rng.choice(contacts))
                response_record(
                    invitation=invitation,
                    survey=survey,
                    score=rng.randint(0, 10),
                    channel=rng.choice(["email", "sms"]),
                    language=rng.choice(LANGUAGES),
                )
            else:
                answer(survey, rng.randint(0, 10), f"k{keys}", rng.choice(LANGUAGES))
        elif op < 0.55:  # the respondent changes their score (same row, updated)
            target = rng.choice(responses)
            if target.invitation_id is not None:
                response_record(
                    invitation=target.invitation,
                    survey=target.survey,
                    score=rng.randint(0, 10),
                    channel=target.channel,
                    language=rng.choice(LANGUAGES),  # a change of language moves it too
                )
            else:
                answer(target.survey, rng.randint(0, 10), target.browser_key or "")
        elif op < 0.65:  # moved in time across local midnights (and days)
            target = rng.choice(responses)
            when = base + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
            Response.objects.for_company(company).filter(pk=target.pk).update(created_at=when)
        elif op < 0.72:  # a queryset update that bypasses every service
            target = rng.choice(responses)
            score = rng.randint(0, 10)
            Response.objects.for_company(company).filter(pk=target.pk).update(
                score=score, category=category_of(score), channel=rng.choice(["sms", "link"])
            )
        elif op < 0.74:  # a comment edit moves nothing
            target = rng.choice(responses)
            Response.objects.for_company(company).filter(pk=target.pk).update(comment="hm")
        elif op < 0.86:
            response_delete(company=company, response=rng.choice(responses))
        elif op < 0.88:  # a contact deleted: its answers stay (SET NULL), figures unchanged
            contact = rng.choice(contacts)
            contacts.remove(contact)
            contact.delete()
            contacts.append(make_contact(company, email=f"new{step}@customer.test"))
        elif op < 0.9:  # a whole survey deleted: its answers go by cascade
            doomed = surveys.pop(rng.randrange(len(surveys)))
            doomed.delete()
            surveys.append(make_survey(company, name=f"S{step}"))
        else:
            rollup_fold(batch_size=rng.choice([3, 50, 1000]))
        if step % 25 == 0:
            assert rolled_counts(company) == live_counts(company), step
            assert_spans_match_days(company)
        if step == 200:
            answer(theirs, 10, "theirs")  # another company's answers never mix in
    assert rolled_counts(company) == live_counts(company)
    rollup_fold()
    assert not RollupDelta.objects.for_company(company).exists()
    assert rolled_counts(company) == live_counts(company)
    assert not Rollup.objects.for_company(company).filter(count__lte=0).exists()
    assert_spans_match_days(company)
    # The selector's figures equal the live count too, per survey and per day.
    live = live_counts(company)
    for survey in surveys:
        figures = metrics_for(company=company, survey=survey, trend="day")
        expected = sum(n for (s, *_), n in live.items() if s == survey.pk)
        assert figures["response_count"] == expected
        for point in figures["trend"] or []:
            day_total = sum(
                n for (s, d, *_), n in live.items() if s == survey.pk and d == point["start"]
            )
            assert point["response_count"] == day_total


def _figures(metrics: Any) -> dict[str, Any]:
    """What a reader sees of a period (dates, counts, trend, segments), for comparison."""
    keep = ("response_count", "nps", "since", "until")
    out = {key: metrics[key] for key in keep}
    for key in ("previous", "year_ago"):
        out[key] = metrics[key] and {k: metrics[key][k] for k in (*keep, "p_value")}
    out["trend"] = [
        (p["start"], p["end"], p["response_count"], p["nps"]) for p in metrics["trend"] or []
    ]
    out["segments"] = [
        (g["value"], g["response_count"], g["nps"]) for g in metrics["segments"] or []
    ]
    return out


def test_any_period_from_days_weeks_and_months_equals_the_live_count(
    company, fold_path, monkeypatch
):
    """Periods that start and end mid-week and mid-month, with every trend and segment, read
    from day, week and month rows plus pending deltas, give what the responses table gives."""
    rng = random.Random(7)
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    surveys = [make_survey(company, name=f"S{i}") for i in range(2)]
    start = datetime(2025, 9, 1, tzinfo=UTC)
    rows = [
        Response(
            company=company,
            survey=rng.choice(surveys),
            score=(score := rng.randint(0, 10)),
            category=category_of(score),
            channel=rng.choice(["email", "sms", "link"]),
            language=rng.choice(LANGUAGES),
            created_at=start + timedelta(minutes=rng.randint(0, 60 * 24 * 500)),
        )
        for _ in range(1500)
    ]
    Response.objects.bulk_create(rows[:1200])
    rollup_fold()
    Response.objects.bulk_create(rows[1200:])  # pending deltas, read with the rollup
    first = date(2025, 9, 1)
    for _ in range(40):
        since = first + timedelta(days=rng.randint(0, 420))
        until = since + timedelta(days=rng.choice([0, 3, 6, 13, 30, 45, 89, 120, 364]))
        options: dict[str, Any] = {
            "since": rng.choice([since, None]) if rng.random() < 0.2 else since,
            "until": until,
            "trend": rng.choice([None, "day", "week", "month"]),
            "segment": rng.choice([None, "channel", "survey", "language"]),
            "survey": rng.choice([None, *surveys]),
            "channel": rng.choice([None, None, "sms"]),
            "year_ago": True,
        }
        rolled = metrics_for(company=company, **options)
        with monkeypatch.context() as patched:
            patched.setattr(selectors, "_rollup_is_stale", lambda company: True)
            live = metrics_for(company=company, **options)
        assert _figures(rolled) == _figures(live), options


def _live(monkeypatch, **options: Any) -> Any:
    """The same figures counted from the responses table."""
    with monkeypatch.context() as patched:
        patched.setattr(selectors, "_rollup_is_stale", lambda company: True)
        return metrics_for(**options)


def test_segment_properties_roll_up_exactly(company, other_company, fold_path, monkeypatch):
    """A property the company segments by is rolled up from the next fold on (built from the
    answers and the pending deltas, then kept by the fold through inserts, property and score
    changes and deletes), and reads give what the responses table gives."""
    rng = random.Random(11)
    company.time_zone = "Asia/Almaty"
    company.save(update_fields=["time_zone"])
    survey = make_survey(company)
    cities: list[Any] = ["Almaty", "Astana", "Берлин", 7, True, None]

    def add(n: int) -> None:
        Response.objects.bulk_create(
            Response(
                company=company,
                survey=survey,
                score=(score := rng.randint(0, 10)),
                category=category_of(score),
                channel=rng.choice(["email", "sms"]),
                language="en",
                contact_properties=(
                    {} if (city := rng.choice(cities)) is None else {"city": city, "n": 1}
                ),
                created_at=datetime(2026, 1, 1, tzinfo=UTC)
                + timedelta(minutes=rng.randint(0, 60 * 24 * 200)),
            )
            for _ in range(n)
        )

    add(300)
    rollup_fold()
    add(100)  # pending when the property is marked: the build must not count them twice
    DashboardSettings.objects.create(company=company, segment_properties=["city"])
    DashboardSettings.objects.create(company=other_company, segment_properties=["city"])
    assert not PropertyRollupBuilt.objects.for_company(company).exists()
    rollup_fold()
    assert PropertyRollupBuilt.objects.for_company(company).get().name == "city"
    responses = list(Response.objects.for_company(company).order_by("pk"))
    for target in rng.sample(responses, 60):  # moved to another city, rescored, deleted
        kind = rng.random()
        rows = Response.objects.for_company(company).filter(pk=target.pk)
        if kind < 0.4:
            rows.update(contact_properties={"city": rng.choice(["Almaty", "Paris"])})
        elif kind < 0.7:
            rows.update(score=(score := rng.randint(0, 10)), category=category_of(score))
        else:
            rows.delete()
        if rng.random() < 0.2:
            rollup_fold(batch_size=7)
    add(50)  # pending at read time
    theirs = answer(make_survey(other_company), 0, "theirs")
    Response.objects.for_company(other_company).filter(pk=theirs.pk).update(
        contact_properties={"city": "Almaty"}
    )
    for _ in range(25):
        since = date(2026, 1, 1) + timedelta(days=rng.randint(0, 150))
        options: dict[str, Any] = {
            "company": company,
            "since": since,
            "until": since + timedelta(days=rng.choice([0, 6, 30, 90, 200])),
            "trend": rng.choice([None, "week", "month"]),
            "segment": rng.choice(["city", "property:city"]),
            "channel": rng.choice([None, "sms"]),
        }
        with CaptureQueriesContext(connection) as rolled_queries:
            rolled = metrics_for(**options)
        assert not any("responses_response" in q["sql"] for q in rolled_queries.captured_queries)
        assert _figures(rolled) == _figures(_live(monkeypatch, **options)), options
    rollup_fold()
    assert (
        sum(
            PropertyRollup.objects.for_company(company)
            .filter(span="day")
            .values_list("count", flat=True)
        )
        == Response.objects.for_company(company).exclude(contact_properties={}).count()
    )
    # Unmarked: dropped by the next fold; segments by it count live again, still exact.
    DashboardSettings.objects.filter(company=company).update(segment_properties=[])
    rollup_fold()
    assert not PropertyRollup.objects.for_company(company).exists()
    assert PropertyRollup.objects.for_company(other_company).exists()
    options = {"company": company, "since": date(2026, 1, 1), "until": date(2026, 7, 1)}
    assert _figures(metrics_for(segment="city", **options)) == _figures(
        _live(monkeypatch, segment="city", **options)
    )


def test_a_time_zone_change_rebuilds_segment_properties(company, fold_path):
    survey = make_survey(company)
    DashboardSettings.objects.create(company=company, segment_properties=["plan"])
    response = answer(survey, 9, "p")
    Response.objects.for_company(company).filter(pk=response.pk).update(
        created_at=datetime(2026, 7, 1, 2, 0, tzinfo=UTC), contact_properties={"plan": "pro"}
    )
    rollup_fold()
    assert PropertyRollup.objects.for_company(company).get(span="day").start == date(2026, 7, 1)
    company.time_zone = "America/New_York"
    company.save(update_fields=["time_zone"])
    rollup_fold()
    assert PropertyRollupBuilt.objects.for_company(company).get().time_zone == "America/New_York"
    assert PropertyRollup.objects.for_company(company).get(span="day").start == date(2026, 6, 30)
    june = metrics_for(
        company=company, since=date(2026, 6, 30), until=date(2026, 6, 30), segment="plan"
    )
    assert [(s["value"], s["response_count"]) for s in june["segments"] or []] == [("pro", 1)]


def test_a_year_reads_weeks_not_days(company, django_assert_max_num_queries):
    """A year's figures come from about 52 week rows per key, not 365 day rows."""
    survey = make_survey(company)
    Response.objects.bulk_create(
        Response(
            company=company,
            survey=survey,
            score=9,
            category="promoter",
            channel="email",
            language="en",
            created_at=datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(days=n),
        )
        for n in range(400)
    )
    rollup_fold()
    asks = [selectors._Ask(selectors.NOW, date(2025, 1, 8), date(2026, 1, 6), "week", None)]
    pieces = selectors._pieces(asks[0])
    assert pieces == [
        ("day", date(2025, 1, 8), date(2025, 1, 12)),
        ("week", date(2025, 1, 13), date(2025, 12, 29)),
        ("day", date(2026, 1, 5), date(2026, 1, 6)),
    ]
    no_trend = selectors._pieces(
        selectors._Ask(selectors.NOW, date(2025, 1, 1), date(2025, 12, 31), None, None)
    )
    assert no_trend == [("month", date(2025, 1, 1), date(2025, 12, 1))]
    with django_assert_max_num_queries(4):
        figures = metrics_for(
            company=company,
            since=date(2025, 1, 8),
            until=date(2026, 1, 6),
            trend="week",
            segment="channel",
            year_ago=True,
        )
    assert figures["response_count"] == 364
    trend = figures["trend"] or []
    assert len(trend) == 53
    assert sum(point["response_count"] for point in trend) == 364


def test_figures_are_current_before_any_fold(company):
    survey = make_survey(company)
    for i, score in enumerate([10, 9, 8, 0]):
        answer(survey, score, f"b{i}")
    assert metrics_for(company=company, survey=survey)["nps"] == 25
    rollup_fold()
    assert not RollupDelta.objects.for_company(company).exists()
    answer(survey, 0, "b9")  # pending delta + folded rollup, read together
    figures = metrics_for(company=company, survey=survey)
    assert figures["response_count"] == 5
    assert figures["nps"] == pytest.approx(0.0)


def test_day_boundaries_follow_the_company_time_zone(company, fold_path):
    company.time_zone = "America/New_York"  # UTC−4 in July
    company.save(update_fields=["time_zone"])
    survey = make_survey(company)
    late = answer(survey, 10, "late")
    early = answer(survey, 0, "early")
    Response.objects.for_company(company).filter(pk=late.pk).update(
        created_at=datetime(2026, 7, 1, 3, 59, 59, tzinfo=UTC)  # 23:59:59 on June 30 locally
    )
    Response.objects.for_company(company).filter(pk=early.pk).update(
        created_at=datetime(2026, 7, 1, 4, 0, 0, tzinfo=UTC)  # midnight of July 1 locally
    )
    for folded in (False, True):
        if folded:
            rollup_fold()
            assert set(
                Rollup.objects.for_company(company).values_list("day", "score", "count")
            ) == {(date(2026, 6, 30), 10, 1), (date(2026, 7, 1), 0, 1)}
        june = metrics_for(company=company, since=date(2026, 6, 30), until=date(2026, 6, 30))
        july = metrics_for(company=company, since=date(2026, 7, 1), until=date(2026, 7, 1))
        assert (june["response_count"], june["nps"]) == (1, 100), folded
        assert (july["response_count"], july["nps"]) == (1, -100), folded
        assert july["previous"] is not None
        assert july["previous"]["nps"] == 100
        assert july["previous"]["since"] == date(2026, 6, 30)


def test_time_zone_change_re_buckets_history(company, fold_path):
    survey = make_survey(company)  # company in UTC
    response = answer(survey, 9, "tz")
    Response.objects.for_company(company).filter(pk=response.pk).update(
        created_at=datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # July 1 in UTC, June 30 in New York
    )
    rollup_fold()
    assert RollupZone.objects.for_company(company).get().time_zone == "UTC"
    assert Rollup.objects.for_company(company).get().day == date(2026, 7, 1)

    company.time_zone = "America/New_York"
    company.save(update_fields=["time_zone"])
    june30 = date(2026, 6, 30)
    # Before the next fold: counted live from the responses table, already in the new zone.
    assert metrics_for(company=company, since=june30, until=june30)["response_count"] == 1
    answer(survey, 3, "tz2")  # a pending delta while the zone changes
    rollup_fold()
    assert RollupZone.objects.for_company(company).get().time_zone == "America/New_York"
    assert Rollup.objects.for_company(company).get(score=9).day == date(2026, 6, 30)
    assert metrics_for(company=company, since=june30, until=june30)["response_count"] == 1
    assert rolled_counts(company) == live_counts(company)
    assert_spans_match_days(company)  # June's week and month now, not July's


def test_rebuild_keeps_answers_that_were_pending(company, fold_path):
    survey = make_survey(company)
    answer(survey, 10, "r1")
    rollup_fold()
    answer(survey, 0, "r2")
    rollup_rebuild(company=company)
    assert not RollupDelta.objects.for_company(company).exists()
    assert rolled_counts(company) == live_counts(company)
    assert_spans_match_days(company)
    assert metrics_for(company=company)["response_count"] == 2


def test_deleted_company_leaves_nothing_behind(company, other_company, fold_path):
    survey = make_survey(company)
    answer(survey, 10, "x")
    rollup_fold()
    answer(survey, 5, "y")
    company.delete()  # cascades: responses deleted after the rollup, deltas left over
    rollup_fold()
    assert not RollupDelta.objects.unscoped(reason="test").exists()
    assert not Rollup.objects.unscoped(reason="test").filter(company_id=company.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_answers_do_not_wait_for_each_other(company):
    """Two answers with the same rollup key, each in an open transaction: the second commits
    while the first is still open (a shared counter row would make it wait for the lock)."""
    survey = make_survey(company)
    first_inserted, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_first() -> None:
        try:
            with transaction.atomic():
                answer(survey, 10, "hot-1")
                first_inserted.set()
                release.wait(10)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            first_inserted.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_first)
    holder.start()
    try:
        assert first_inserted.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            answer(survey, 10, "hot-2")  # same survey, day, channel and score
    finally:
        release.set()
        holder.join(10)
    assert not errors, errors
    assert metrics_for(company=company, survey=survey)["response_count"] == 2
    rollup_fold()
    assert Rollup.objects.for_company(company).get().count == 2


def test_the_fold_task_runs_on_the_rollups_queue_every_few_seconds(company, settings):
    from celery import current_app

    from dashboards.tasks import rollup_fold as task

    survey = make_survey(company)
    answer(survey, 7, "t")
    assert task.delay().get() == 1
    assert Rollup.objects.for_company(company).get().count == 1
    route = current_app.amqp.router.route({}, task.name)
    assert route["queue"].name == "rollups"
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task.name]
    assert len(entries) == 1
    assert entries[0]["schedule"] <= 10


def test_same_period_a_year_ago(company):
    survey = make_survey(company)
    for key, score, when in (
        ("now", 10, datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("then", 0, datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("before", 5, datetime(2026, 2, 27, 12, tzinfo=UTC)),  # the previous period's
    ):
        response = answer(survey, score, key)
        Response.objects.for_company(company).filter(pk=response.pk).update(created_at=when)
    figures = metrics_for(
        company=company, since=date(2026, 2, 28), until=date(2026, 3, 1), year_ago=True
    )
    assert figures["year_ago"] is not None
    assert figures["previous"] is not None
    assert (figures["year_ago"]["since"], figures["year_ago"]["until"]) == (
        date(2025, 2, 28),
        date(2025, 3, 1),
    )
    assert figures["year_ago"]["nps"] == -100
    assert figures["year_ago"]["difference"] == 200
    assert figures["previous"]["since"] == date(2026, 2, 26)
    assert figures["previous"]["nps"] == -100


def test_rebuild_command_repairs_a_rollup_loaded_without_triggers(company, other_company):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    survey = make_survey(company)
    answer(survey, 10, "silent")
    # As after a bulk load with the triggers disabled: the answer has no delta.
    RollupDelta.objects.for_company(company).delete()
    assert metrics_for(company=company)["response_count"] == 0
    out = StringIO()
    call_command("rollup_rebuild", "--company", company.slug, stdout=out)
    assert "1 company" in out.getvalue()
    assert metrics_for(company=company)["response_count"] == 1
    assert rolled_counts(company) == live_counts(company)
    call_command("rollup_rebuild", "--all", stdout=out)
    assert "2 companies" in out.getvalue()
    with pytest.raises(CommandError, match="No company"):
        call_command("rollup_rebuild", "--company", "nope")
