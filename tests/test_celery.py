"""Celery: the configuration the design asks for, and a real worker honouring on-commit sends."""

from __future__ import annotations

import re
import uuid
from contextlib import suppress
from functools import partial

import pytest
from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from companies.models import Company
from companies.services import company_create, user_create
from companies.task_base import TenantTask
from nps_saas.celery import app
from nps_saas.tasks import HEARTBEAT_CACHE_KEY, heartbeat
from tests.celery_tasks import COMPANY_NAME_KEY, record_company_name
from tests.conftest import TEST_QUEUE, CeleryWorker

QUEUES = {"default", "sends", "alerts", "rollups"}


class Rollback(Exception):
    pass


def new_company(name: str) -> Company:
    owner = user_create(
        email=f"{name.lower().replace(' ', '-')}@celery.test", password="x9-Qz!long"
    )
    return company_create(name=name, owner=owner)


def new_token() -> str:
    """A key no earlier run (or other session on the same Redis) can have written."""
    return uuid.uuid4().hex


def company_name_in_cache(token: str) -> object:
    return cache.get(COMPANY_NAME_KEY.format(token=token))


# --- Configuration --------------------------------------------------------------------------


def test_messages_are_json_only() -> None:
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_a_crashed_worker_never_loses_a_task() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_time_limits_are_set_and_the_broker_waits_longer_than_them() -> None:
    soft, hard = app.conf.task_soft_time_limit, app.conf.task_time_limit
    assert 0 < soft < hard
    # Otherwise Redis would hand a still-running task to a second worker.
    assert app.conf.broker_transport_options["visibility_timeout"] > hard


def test_the_four_queues_are_declared_and_nothing_else_is_created() -> None:
    # Plus, in test mode only, the queue of the workers a test starts for itself.
    assert {queue.name for queue in app.conf.task_queues} == {*QUEUES, TEST_QUEUE}
    assert app.conf.task_default_queue == "default"
    assert app.conf.task_create_missing_queues is False


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("notifications.send_email", "sends"),
        ("surveys.send_due_invitations", "sends"),
        ("responses.alert_detractor", "alerts"),
        ("dashboards.rollup_day", "rollups"),
        ("nps_saas.heartbeat", "default"),
    ],
)
def test_tasks_are_routed_to_their_queue(task_name: str, queue: str) -> None:
    assert app.amqp.router.route({}, task_name)["queue"].name == queue


def test_every_route_points_at_a_declared_queue() -> None:
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= QUEUES


def test_the_make_targets_consume_every_queue() -> None:
    makefile = (settings.BASE_DIR / "Makefile").read_text()
    match = re.search(r"celery -A nps_saas worker -Q (\S+)", makefile)
    assert match, "make worker must start a worker with -Q"
    assert set(match.group(1).split(",")) == QUEUES


def test_tasks_can_be_enqueued_after_commit() -> None:
    # TenantTask (companies/task_base.py) is a DjangoTask that sets the row-level security scope.
    assert isinstance(heartbeat, DjangoTask)
    assert isinstance(heartbeat, TenantTask)
    assert app.task_cls == "companies.task_base:TenantTask"


@pytest.mark.django_db
def test_delay_on_commit_waits_for_the_commit(django_capture_on_commit_callbacks) -> None:
    cache.delete(HEARTBEAT_CACHE_KEY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        heartbeat.delay_on_commit()
    assert len(callbacks) == 1
    assert cache.get(HEARTBEAT_CACHE_KEY) is None
    callbacks[0]()  # the commit; tasks are eager in unit tests
    assert cache.get(HEARTBEAT_CACHE_KEY) is not None


# --- A real worker --------------------------------------------------------------------------


def test_a_committed_transaction_reaches_the_worker(celery_worker_process: CeleryWorker) -> None:
    cache.delete(HEARTBEAT_CACHE_KEY)
    with transaction.atomic():
        company = new_company("Committed Coffee")
        token = new_token()
        record_company_name.delay_on_commit(company.pk, token)
        heartbeat.delay_on_commit()

    record = celery_worker_process.wait_for(
        lambda: company_name_in_cache(token), what="the worker to read the committed company"
    )
    assert record == {"name": "Committed Coffee", "pid": celery_worker_process.process.pid}
    celery_worker_process.wait_for(
        lambda: cache.get(HEARTBEAT_CACHE_KEY), what="the heartbeat from the worker"
    )


def test_a_rolled_back_transaction_enqueues_nothing(celery_worker_process: CeleryWorker) -> None:
    cache.delete(HEARTBEAT_CACHE_KEY)
    with suppress(Rollback), transaction.atomic():
        heartbeat.delay_on_commit()
        raise Rollback

    # A task sent afterwards to the same queue runs after anything sent before it (one worker,
    # one message at a time): once it has run, a heartbeat would have run too, had it been sent.
    with transaction.atomic():
        sentinel = new_company("Sentinel Tea")
        token = new_token()
        record_company_name.delay_on_commit(sentinel.pk, token)
    record = celery_worker_process.wait_for(
        lambda: company_name_in_cache(token), what="the task sent after the rollback"
    )
    assert record == {"name": "Sentinel Tea", "pid": celery_worker_process.process.pid}
    assert cache.get(HEARTBEAT_CACHE_KEY) is None


def test_the_worker_consumes_every_queue(celery_worker_process: CeleryWorker) -> None:
    tokens = {}
    for queue in sorted(QUEUES):
        with transaction.atomic():
            company = new_company(f"Queue {queue}")
            token = new_token()
            record_company_name.apply_async_on_commit(args=(company.pk, token), queue=queue)
        tokens[queue] = token
    for queue, token in tokens.items():
        record = celery_worker_process.wait_for(
            partial(company_name_in_cache, token),
            what=f"the task sent to the {queue} queue",
        )
        assert record == {"name": f"Queue {queue}", "pid": celery_worker_process.process.pid}
