"""Waking workers: a Celery message that only says "there is work, look now".

What the system owes (a batch to send, an expansion, an alert evaluation, a webhook event)
is a row in the database, written in the same transaction as its cause. The message that
``wake`` publishes after the commit is only a shortcut to a worker: lost (Redis down or
restarted), repeated or late, it changes nothing, because every task claims its work with a
conditional UPDATE and the periodic sweeps find owed work whose message went missing.

So a failure to publish is logged and swallowed: a saved answer must not turn into an HTTP
500 because the broker is down. Publishing does not wait for the broker either (one quick
reconnect, then give up): the sweep is the retry.

Tasks are named, not imported: an app's services wake its tasks without importing
``tasks.py``, which imports the services (no cycle).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app
from celery.exceptions import NotRegistered
from django.db import InterfaceError, transaction
from django.db import OperationalError as DatabaseError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Infrastructure that is down for a while (the database restarting, Redis or the broker
# unreachable): a task retries these with backoff; they say nothing about the work itself.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseError,
    InterfaceError,
    RedisError,
    BrokerError,
)

# Celery's own retry for tasks on the owed-work paths (``@shared_task(..., **INFRA_RETRY)``):
# infrastructure errors retried with exponential backoff and jitter, 5 s … 2 min. If even the
# retry cannot be enqueued (Redis down), nothing is lost: the sweeps wake the work again.
INFRA_RETRY: dict[str, Any] = {
    "autoretry_for": INFRASTRUCTURE_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 10,
}

# One reconnect (a pooled connection that broke while Redis restarted), then give up.
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def wake_now(task_name: str, *args: Any, **kwargs: Any) -> bool:
    """Publish ``task_name(*args, **kwargs)``; False (logged) when the broker is unavailable.

    In the embedded default and unit tests (``CELERY_TASK_ALWAYS_EAGER``) the task runs
    here, inline, and its errors propagate.
    """
    task = _task(task_name)
    if current_app.conf.task_always_eager:
        task.apply_async(args=args, kwargs=kwargs)
        return True
    try:
        task.apply_async(args=args, kwargs=kwargs, retry=True, retry_policy=_PUBLISH_RETRY)
    except (BrokerError, RedisError, OSError) as err:
        logger.warning("could not wake %s (the sweep will): %s", task_name, err)
        return False
    return True


def _task(name: str) -> Task:
    try:
        return current_app.tasks[name]
    except NotRegistered:
        # Tasks are discovered lazily (autodiscover_tasks): a web process that never
        # imported an app's tasks module has them once the default modules are imported.
        current_app.loader.import_default_modules()
        return current_app.tasks[name]


def wake(task_name: str, *args: Any, **kwargs: Any) -> None:
    """``wake_now`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: wake_now(task_name, *args, **kwargs))
