"""Point this process's Celery publisher at another broker for one test (eager off), so a
test can take the broker away under the code that publishes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nps_saas.celery import app


def _reset_pools() -> None:
    # The next publish builds its pools from the broker URL of the moment (kombu keeps one
    # pool per URL, so the suite's own is found again afterwards).
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    conf = app.conf
    saved = (conf.broker_url, conf.task_always_eager)
    _reset_pools()
    conf.update(broker_url=url, task_always_eager=False)
    try:
        yield
    finally:
        _reset_pools()
        conf.update(broker_url=saved[0], task_always_eager=saved[1])
