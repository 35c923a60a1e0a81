"""The test session's connections bind PostgreSQL's row-level security, as production's do.

Migrations run as the owner of the tables (the session's ``DATABASE_URL`` user); then every
connection of the session, its live-server threads and its Celery worker subprocesses
switches to ``APP_ROLE``, a role that owns nothing and is granted DML only (libpq's
``PGOPTIONS``: ``-c role=...`` at connect, so no code path can forget it). Policies apply to
that role (``companies.rls``); a superuser or the owner would bypass them.

Test code itself (fixtures building data, assertions reading it, threads a test starts)
runs as a system job: its connections start with ``app.system`` on. Requests and tasks do not
inherit it: ``RowLevelSecurityMiddleware`` clears it for each request and ``TenantTask`` sets
its own, so they see only what their choke point sets. ``NPS_TEST_RLS=0``: run as the owner.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created

from companies import rls

APP_ROLE = "nps_app"
# Whether this session's connections use APP_ROLE (a one-item list: set by the session fixture).
_active = [False]


def enabled() -> bool:
    return connection.vendor == "postgresql" and os.environ.get("NPS_TEST_RLS", "1") != "0"


def _test_code_is_a_system_job(sender: Any, connection: Any, **kwargs: Any) -> None:
    # Threads a test starts (to race two services) are test code too; a live server's request
    # threads are not: their connection opens inside the request.
    if not rls.serving_request():
        rls.activate(rls.SYSTEM, using=connection.alias)


@contextmanager
def connected_as_app_role() -> Iterator[None]:
    """Grant ``APP_ROLE`` on the test database, then reconnect everything as that role."""
    if not enabled():
        yield
        return
    with connection.cursor() as cursor:
        for statement in rls.app_role_grants(APP_ROLE):
            cursor.execute(statement)
    before = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"{before or ''} -c role={APP_ROLE}".strip()
    connection_created.connect(_test_code_is_a_system_job)
    connections.close_all()
    _active[0] = True
    try:
        yield
    finally:
        _active[0] = False
        connection_created.disconnect(_test_code_is_a_system_job)
        if before is None:
            del os.environ["PGOPTIONS"]
        else:
            os.environ["PGOPTIONS"] = before
        connections.close_all()


@pytest.fixture(autouse=True)
def _test_code_runs_as_a_system_job_again(django_db_blocker: Any) -> Iterator[None]:
    """After each test, the test thread's connection is a system job again, whatever the test
    set (a test's rollback reverts PostgreSQL's value, not what companies.rls remembers)."""
    yield
    if _active[0] and connection.connection is not None:
        with django_db_blocker.unblock():
            rls.activate(rls.SYSTEM)
