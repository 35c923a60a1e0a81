"""The test session's connections bind PostgreSQL's row-level security, as production's do.

Migrations run as the owner of the tables (the session's ``DATABASE_URL`` user); then every
connection of the session, its live-server threads and its Celery worker subprocesses
switches to ``APP_ROLE``, a role that owns nothing and is granted DML only (libpq's
``PGOPTIONS``: ``-c role=...`` at connect, so no code path can forget it). Policies apply to
that role (``companies.rls``); a superuser or the owner would bypass them.

Test code itself (fixtures building data, assertions reading it) runs as a system job: the
test thread's connections start with ``app.system`` on. Requests and tasks do not inherit it:
``RowLevelSecurityMiddleware`` clears it for each request and ``TenantTask`` sets its own, so
they see only what their choke point sets. ``NPS_TEST_RLS=0`` runs the suite as the owner.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections
from django.db.backends.signals import connection_created

from companies import rls

APP_ROLE = "nps_app"

_GRANTS = [
    # Roles are shared by every database of the server: another test session may create it at
    # the same moment.
    f"""DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$""",
    f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
    f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
]


def enabled() -> bool:
    return connection.vendor == "postgresql" and os.environ.get("NPS_TEST_RLS", "1") != "0"


def _test_code_is_a_system_job(sender: Any, connection: Any, **kwargs: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        rls.activate(rls.SYSTEM, using=connection.alias)


@contextmanager
def connected_as_app_role() -> Iterator[None]:
    """Grant ``APP_ROLE`` on the test database, then reconnect everything as that role."""
    if not enabled():
        yield
        return
    with connection.cursor() as cursor:
        for statement in _GRANTS:
            cursor.execute(statement)
    before = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"{before or ''} -c role={APP_ROLE}".strip()
    connection_created.connect(_test_code_is_a_system_job)
    connections.close_all()
    try:
        yield
    finally:
        connection_created.disconnect(_test_code_is_a_system_job)
        if before is None:
            del os.environ["PGOPTIONS"]
        else:
            os.environ["PGOPTIONS"] = before
        connections.close_all()
