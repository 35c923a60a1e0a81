"""A small in-process stand-in for ``celery beat``, for the embedded default (``make run``).

``make run`` has no broker and no beat process, yet periodic work (due sends, reminders,
rollups) must still happen. :class:`EmbeddedScheduler` reads the same
``settings.CELERY_BEAT_SCHEDULE`` that beat reads and runs each due entry inline with
``task.apply()`` (tasks are eager in embedded mode anyway). :func:`start_in_thread` runs it in
a daemon thread next to the development server.

Schedules may be a number of seconds, a ``timedelta``, ``celery.schedules.schedule`` (both run
once at start, then every interval) or any other celery schedule with ``is_due()`` such as
``crontab`` (first run at its next due time, as beat does).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from celery.schedules import BaseSchedule
from celery.schedules import schedule as interval_schedule
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# The longest the thread sleeps between looks at the schedule; bounds how late a crontab
# entry whose is_due() asks for a long wait can be after the wall clock jumps.
MAX_SLEEP_SECONDS = 60.0


@dataclass
class Entry:
    """One line of the beat schedule and when it last ran."""

    name: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    interval: timedelta | None = None  # plain intervals: due at start, then every interval
    schedule: BaseSchedule | None = None  # crontab and friends: ask the schedule
    last_run_at: datetime | None = None
    runs: int = 0
    failures: int = 0


def _as_interval(value: object) -> timedelta | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, timedelta):
        return value
    if type(value) is interval_schedule:  # not a subclass such as crontab
        run_every: timedelta = value.run_every  # type: ignore[attr-defined]  # missing in stubs
        return run_every
    return None


def build_entries(
    beat_schedule: Mapping[str, Mapping[str, Any]], *, clock: Clock, started_at: datetime
) -> list[Entry]:
    """Turn ``CELERY_BEAT_SCHEDULE`` into entries. Unknown schedule types raise ValueError."""
    entries = []
    for name, spec in beat_schedule.items():
        raw = spec["schedule"]
        entry = Entry(
            name=name,
            task=spec["task"],
            args=tuple(spec.get("args", ())),
            kwargs=dict(spec.get("kwargs", {})),
        )
        interval = _as_interval(raw)
        if interval is not None:
            if interval <= timedelta(0):
                raise ValueError(f"beat entry {name!r}: the interval must be positive")
            entry.interval = interval
        elif isinstance(raw, BaseSchedule):
            # A copy that tells time by our clock, so that tests can move time forward.
            sched = copy.copy(raw)
            sched.nowfun = clock  # type: ignore[attr-defined]  # the stubs say nowfunc
            entry.schedule = sched
            entry.last_run_at = started_at
        else:
            raise ValueError(f"beat entry {name!r}: unsupported schedule {raw!r}")
        entries.append(entry)
    return entries


class EmbeddedScheduler:
    """Runs due beat entries inline. Not thread-safe: one thread calls :meth:`run_due`."""

    def __init__(
        self,
        *,
        app: Celery,
        beat_schedule: Mapping[str, Mapping[str, Any]],
        clock: Clock = timezone.now,
    ) -> None:
        self.app = app
        self.clock = clock
        self.entries = build_entries(beat_schedule, clock=clock, started_at=clock())
        # Celery registers tasks as their modules are imported, and a web process imports few
        # of them: import every installed app's tasks module now, as a worker does at start.
        app.autodiscover_tasks(force=True)
        for entry in self.entries:
            if entry.task not in app.tasks:
                logger.error("embedded scheduler: %s names unknown task %s", entry.name, entry.task)

    def seconds_until_due(self, entry: Entry, now: datetime) -> float:
        """0 when the entry is due now, else how long until it is (an estimate for crontab)."""
        if entry.interval is not None:
            if entry.last_run_at is None:
                return 0.0
            left = entry.last_run_at + entry.interval - now
            return max(left.total_seconds(), 0.0)
        assert entry.schedule is not None
        assert entry.last_run_at is not None
        is_due, next_check = entry.schedule.is_due(entry.last_run_at)
        return 0.0 if is_due else max(float(next_check), 0.0)

    def run_due(self) -> float:
        """Run every due entry once; return how many seconds until the next one is due."""
        for entry in self.entries:
            if self.seconds_until_due(entry, self.clock()) == 0.0:
                self.run_entry(entry)
        now = self.clock()
        waits = [self.seconds_until_due(entry, now) for entry in self.entries]
        return min([*waits, MAX_SLEEP_SECONDS])

    def run_entry(self, entry: Entry) -> None:
        """Run one entry inline. A failure is logged and counted; it never propagates."""
        entry.last_run_at = self.clock()
        entry.runs += 1
        # Each run gets fresh database connections, as a request or a worker task would.
        close_old_connections()
        try:
            task = self.app.tasks[entry.task]
            result = task.apply(args=entry.args, kwargs=entry.kwargs, throw=True)
        except Exception:
            # The scheduler must outlive any one task's bug; the traceback goes to the log.
            entry.failures += 1
            logger.exception("embedded scheduler: %s (%s) failed", entry.name, entry.task)
        else:
            logger.debug("embedded scheduler: %s ran (%s)", entry.name, result.state)
        finally:
            close_old_connections()


def _loop(scheduler: EmbeddedScheduler, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            wait = scheduler.run_due()
        except Exception:
            # A broken schedule (not a broken task) must not end periodic work silently.
            logger.exception("embedded scheduler: could not evaluate the schedule")
            wait = MAX_SLEEP_SECONDS
        stop.wait(max(wait, 0.5))


def start_in_thread(scheduler: EmbeddedScheduler) -> tuple[threading.Thread, threading.Event]:
    """Start ``scheduler`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_loop, args=(scheduler, stop), name="embedded-scheduler", daemon=True
    )
    thread.start()
    return thread, stop
