"""Fixtures for the cross-app tests. ``celery_worker_process``: a real Celery worker.

Unit tests run Celery tasks inline (``CELERY_TASK_ALWAYS_EAGER`` in test mode). A test that
needs the real thing asks for ``celery_worker_process``: one worker subprocess per test session
consuming every queue from the test database and the test Redis; during the test, tasks go
through the broker. Such tests get the ``celery_worker`` marker automatically
(``-m "not celery_worker"`` skips them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from nps_saas.celery import app
from tests.waits import WAIT_SECONDS

WORKER_START_TIMEOUT = WAIT_SECONDS
WORKER_STOP_TIMEOUT = 10.0
DEFAULT_WAIT = WAIT_SECONDS


@dataclass
class CeleryWorker:
    process: subprocess.Popen[bytes]
    nodename: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"the Celery worker exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def wait_for(
        self, condition: Callable[[], Any], *, what: str, timeout: float = DEFAULT_WAIT
    ) -> Any:
        """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            self.assert_alive()
            time.sleep(0.05)
        pytest.fail(
            f"gave up after {timeout:.0f} s waiting for {what}; worker log:\n{self.log_tail()}"
        )


def database_url(settings_dict: dict[str, Any]) -> str:
    """The URL of the database this test session uses (the test database, once set up)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"


# The queue of workers a test starts for itself (test mode declares it; see settings).
TEST_QUEUE = "tests"


def worker_queues() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES if queue.name != TEST_QUEUE]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task, then exit
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=WORKER_STOP_TIMEOUT)


def start_celery_worker(
    *, log_path: Path, queues: list[str] | None = None, env: dict[str, str] | None = None
) -> CeleryWorker:
    """A worker subprocess on the test database and Redis, answering pings; stop it with
    ``stop_celery_worker``. ``queues`` defaults to every queue; ``env`` adds settings."""
    nodename = f"pytest-{uuid.uuid4().hex[:8]}@%h"
    full_env = {
        **os.environ,
        "NPS_MODE": "test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "nps_saas",
        "worker",
        "-Q",
        ",".join(queues or worker_queues()),
        "--pool=solo",
        "--concurrency=1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
        "--include=tests.celery_tasks",
        "-n",
        nodename,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command, cwd=settings.BASE_DIR, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    worker = CeleryWorker(process=process, nodename=nodename, log_path=log_path)
    try:
        hostname = nodename.replace("%h", os.uname().nodename)
        worker.wait_for(
            lambda: app.control.ping(destination=[hostname], timeout=0.5),
            what="the Celery worker to answer a ping",
            timeout=WORKER_START_TIMEOUT,
        )
    except BaseException:
        stop_celery_worker(worker)
        raise
    return worker


def stop_celery_worker(worker: CeleryWorker) -> None:
    _stop(worker.process)


@pytest.fixture(scope="session")
def _celery_worker_session(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryWorker]:
    if connection.vendor != "postgresql":
        pytest.skip("the real Celery worker needs the PostgreSQL test database")
    # Messages a crashed earlier run left behind must not run against this run's rows.
    app.control.purge()
    worker = start_celery_worker(log_path=tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        yield worker
    finally:
        stop_celery_worker(worker)


@pytest.fixture
def celery_worker_process(
    _celery_worker_session: CeleryWorker, transactional_db: None
) -> Iterator[CeleryWorker]:
    """A running worker; during the test, tasks are sent to it instead of running inline.

    Uses ``transactional_db``: the worker is another process, it only sees committed rows.
    """
    _celery_worker_session.assert_alive()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield _celery_worker_session
    finally:
        app.conf.task_always_eager = eager


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "celery_worker_process" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.celery_worker)
