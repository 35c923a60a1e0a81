"""The embedded scheduler (make run's stand-in for celery beat)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab, schedule
from django.conf import settings
from django.core.cache import cache
from django.db import connections

from nps_saas.celery import app
from nps_saas.scheduler import MAX_SLEEP_SECONDS, EmbeddedScheduler, start_in_thread
from nps_saas.tasks import HEARTBEAT_CACHE_KEY
from tests import celery_tasks  # noqa: F401  (registers tests.fail)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC))


@pytest.fixture(autouse=True)
def _no_heartbeat() -> None:
    cache.delete(HEARTBEAT_CACHE_KEY)


@pytest.fixture(autouse=True)
def _no_open_connection() -> None:
    """The scheduler's ``close_old_connections()`` checks an open connection's state, which
    these database-free tests may not touch: close what an earlier test left open (closing
    needs no database access)."""
    connections.close_all()


def beat(entry_schedule: object, task: str = "nps_saas.heartbeat") -> dict[str, dict[str, object]]:
    return {"entry": {"task": task, "schedule": entry_schedule}}


@pytest.mark.parametrize(
    "every", [30, 30.0, timedelta(seconds=30), schedule(timedelta(seconds=30))]
)
def test_an_interval_runs_at_start_then_once_per_interval(clock: FakeClock, every: object) -> None:
    scheduler = EmbeddedScheduler(app=app, beat_schedule=beat(every), clock=clock)
    entry = scheduler.entries[0]

    assert scheduler.run_due() == 30.0
    assert entry.runs == 1
    assert cache.get(HEARTBEAT_CACHE_KEY) is not None

    clock.advance(seconds=29)
    assert scheduler.run_due() == pytest.approx(1.0)
    assert entry.runs == 1

    clock.advance(seconds=1)
    scheduler.run_due()
    assert entry.runs == 2


def test_a_crontab_waits_for_its_time(clock: FakeClock) -> None:
    """Like beat, a crontab entry does not fire at start, only when its minute comes."""
    scheduler = EmbeddedScheduler(app=app, beat_schedule=beat(crontab(minute="5")), clock=clock)
    entry = scheduler.entries[0]

    scheduler.run_due()
    assert entry.runs == 0
    clock.advance(minutes=4)  # 10:04:30
    scheduler.run_due()
    assert entry.runs == 0
    clock.advance(minutes=1)  # 10:05:30
    scheduler.run_due()
    assert entry.runs == 1
    clock.advance(minutes=2)
    scheduler.run_due()
    assert entry.runs == 1


def test_the_wait_is_capped(clock: FakeClock) -> None:
    scheduler = EmbeddedScheduler(app=app, beat_schedule=beat(timedelta(hours=6)), clock=clock)
    assert scheduler.run_due() == MAX_SLEEP_SECONDS


@pytest.mark.parametrize("bad", ["every minute", 0, -5, None])
def test_an_unusable_schedule_is_refused(clock: FakeClock, bad: object) -> None:
    with pytest.raises(ValueError, match="entry"):
        EmbeddedScheduler(app=app, beat_schedule=beat(bad), clock=clock)


def test_a_failing_task_is_logged_and_does_not_stop_the_others(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = EmbeddedScheduler(
        app=app,
        beat_schedule={
            "broken": {"task": "tests.fail", "schedule": 10},
            "missing": {"task": "no.such.task", "schedule": 10},
            "heartbeat": {"task": "nps_saas.heartbeat", "schedule": 10},
        },
        clock=clock,
    )
    with caplog.at_level(logging.ERROR, logger="nps_saas.scheduler"):
        scheduler.run_due()

    broken, missing, heartbeat = scheduler.entries
    assert (broken.failures, missing.failures, heartbeat.failures) == (1, 1, 0)
    assert cache.get(HEARTBEAT_CACHE_KEY) is not None
    messages = [record.getMessage() for record in caplog.records]
    assert any("broken (tests.fail) failed" in m for m in messages)
    assert any("no.such.task" in m for m in messages)
    assert "this task always fails" in caplog.text

    clock.advance(seconds=10)
    scheduler.run_due()
    assert (broken.runs, heartbeat.runs) == (2, 2)


def test_the_project_schedule_runs_the_heartbeat_in_a_thread() -> None:
    """The real CELERY_BEAT_SCHEDULE, the real clock and a real thread: the heartbeat lands."""
    scheduler = EmbeddedScheduler(app=app, beat_schedule=settings.CELERY_BEAT_SCHEDULE)
    assert "nps_saas.heartbeat" in {entry.task for entry in scheduler.entries}
    thread, stop = start_in_thread(scheduler)
    try:
        deadline = time.monotonic() + 5
        while cache.get(HEARTBEAT_CACHE_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.get(HEARTBEAT_CACHE_KEY) is not None
        assert thread.daemon
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
