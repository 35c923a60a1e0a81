"""Concurrent answers with the same rollup key: do they queue behind one row?

On a throw-away PostgreSQL database, THREADS writers (one connection each) record ANSWERS
answers each, all for the same survey, day, channel and score, one transaction per answer.
Each transaction holds HOLD_MS before committing, standing in for the rest of the answer's
work (invitation update, timeline, alert enqueue). Two runs in the same process:

* rollup deltas (what the app does): the insert fires the trigger, which appends a delta row;
* a hot counter (the design the rollup avoids): the same, plus ``UPDATE … SET n = n + 1`` on
  one shared row, whose lock each transaction holds until it commits.

If answers serialized on a row, the wall time would be THREADS × ANSWERS × HOLD; in parallel
it is about ANSWERS × HOLD. Prints both wall times, checks the rollup's figure is exact, and
last the ratio deltas / hot counter (goal ≤ 0.5; about 1/THREADS when nothing serializes).
Before that, what the trigger costs an answer: SERIAL one-row transactions with the rollup
triggers on and off.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import TYPE_CHECKING

from bench._django import bench_database

if TYPE_CHECKING:
    from surveys.models import Survey

THREADS = int(os.environ.get("BENCH_THREADS", "8"))
ANSWERS = int(os.environ.get("BENCH_ANSWERS", "25"))
HOLD_MS = int(os.environ.get("BENCH_HOLD_MS", "20"))
SERIAL = int(os.environ.get("BENCH_SERIAL", "2000"))
TRIGGERS = ("dashboards_rollup_inserted", "dashboards_rollup_updated", "dashboards_rollup_deleted")


def _writer(survey: Survey, name: str, hot: bool, errors: list[BaseException]) -> None:
    from django.db import connection, connections, transaction

    from responses.models import Response

    try:
        for i in range(ANSWERS):
            with transaction.atomic():
                Response.objects.create(
                    company=survey.company,
                    survey=survey,
                    score=10,
                    category="promoter",
                    channel="link",
                    browser_key=f"{name}-{i}-{hot}",
                )
                with connection.cursor() as cursor:
                    if hot:
                        cursor.execute("UPDATE bench_hot_counter SET n = n + 1 WHERE id = 1")
                    cursor.execute("SELECT pg_sleep(%s)", [HOLD_MS / 1000])
    except BaseException as exc:  # reported by main()
        errors.append(exc)
    finally:
        connections.close_all()


def _run(survey: Survey, hot: bool) -> float:
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(survey, f"w{n}", hot, errors))
        for n in range(THREADS)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def _serial_inserts(survey: Survey, tag: str) -> float:
    """Seconds per answer for SERIAL one-row transactions (insert + commit)."""
    from django.db import transaction

    from responses.models import Response

    started = time.perf_counter()
    for i in range(SERIAL):
        with transaction.atomic():
            Response.objects.create(
                company=survey.company,
                survey=survey,
                score=i % 11,
                category="promoter",
                channel="link",
                browser_key=f"serial-{tag}-{i}",
            )
    return (time.perf_counter() - started) / SERIAL


def _set_triggers(enabled: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in TRIGGERS:
            state = "ENABLE" if enabled else "DISABLE"
            cursor.execute(f"ALTER TABLE responses_response {state} TRIGGER {name}")


def main() -> None:
    with bench_database():
        from django.db import connection

        from companies.services import company_create, user_create
        from dashboards.selectors import metrics_for
        from dashboards.services import rollup_fold
        from surveys.models import Survey

        owner = user_create(email="bench@rollup.test", password=secrets.token_urlsafe(16))
        company = company_create(name="Rollup bench", owner=owner, industry="retail")
        survey = Survey.objects.create(company=company, name="Hot key", status="active")
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_hot_counter (id int PRIMARY KEY, n bigint)")
            cursor.execute("INSERT INTO bench_hot_counter VALUES (1, 0)")
        rollup_fold()
        _serial_inserts(survey, "warm-up")
        _set_triggers(enabled=False)
        try:
            bare = _serial_inserts(survey, "bare")
        finally:
            _set_triggers(enabled=True)
        with_trigger = _serial_inserts(survey, "trigger")
        connection.close()  # the writers' connections are their own

        deltas = _run(survey, hot=False)
        hot = _run(survey, hot=True)
        total = 2 * THREADS * ANSWERS + 2 * SERIAL  # the warm-up and triggered serial runs
        figures = metrics_for(company=company, survey=survey)
        assert figures["response_count"] == total, figures["response_count"]  # bare: uncounted
        folded = rollup_fold()
        assert metrics_for(company=company, survey=survey)["response_count"] == total
        serial = THREADS * ANSWERS * HOLD_MS / 1000
        print(
            f"one answer per transaction: {bare * 1000:.2f} ms without the rollup trigger, "
            f"{with_trigger * 1000:.2f} ms with it ({with_trigger / bare:.2f}x)"
        )
        print(f"{THREADS} writers × {ANSWERS} answers, {HOLD_MS} ms held per transaction")
        print(f"fully serialized would take {serial:.2f} s; parallel ≈ {serial / THREADS:.2f} s")
        print(f"rollup deltas: {deltas:.2f} s; hot counter row: {hot:.2f} s")
        print(f"rollup exact: {total} answers counted; {folded} deltas folded after")
        print(f"ratio deltas/hot-row wall time: {deltas / hot:.2f} (goal <= 0.5)")


if __name__ == "__main__":
    main()
