"""Row-level security in PostgreSQL: the database's own backstop behind the tenancy choke point.

``companies.tenancy`` keeps every ORM query to one company; this module makes PostgreSQL hold
the same line for anything that slips past it (a raw query, a forgotten filter). Every table
with a ``company_id`` gets the policy ``tenant_isolation`` (see ``RowLevelSecurity``, applied
by a migration from the models' metadata): a row is visible and writable only when

* ``app.company_id`` is its company: set by the choke points (the web app's company URL, the
  API key, a public token once looked up, a Celery task from its ``company_id``), or
* ``app.system`` is ``on``: a system job, marked explicitly (``system()``; every
  ``.unscoped(reason=...)`` query runs so; periodic sweeps are tasks with ``system_job=True``).

With neither set, a tenant table is empty. Policies bind only roles that neither own the
tables nor are superusers: in production the app connects as such a role (README, "Database
roles") and migrations run as the owner.

Why session-level settings (``set_config(..., false)``) rather than ``SET LOCAL``: Django runs
in autocommit, so a transaction-scoped value would last one statement outside ``atomic()``.
A session-level value lasts until changed, so whoever sets it restores the previous value when
done: the request middleware (``RowLevelSecurityMiddleware``) at the end of every request and
the task base at the end of every task, so a connection reused by the next request
(``CONN_MAX_AGE``) never carries a previous tenant. Set inside a transaction that rolls back,
PostgreSQL itself reverts the value to what it was before the transaction.

SQLite (the embedded default) has no row-level security: everything here is a no-op there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.operations.base import Operation

from companies.system_jobs import system_job

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import ProjectState

POLICY = "tenant_isolation"
COMPANY_SETTING = "app.company_id"
SYSTEM_SETTING = "app.system"
TENANT_COLUMN = "company_id"

# ``current_setting(name, true)`` is NULL when never set and '' once reset: both match nothing.
_CONDITION = (
    f"{TENANT_COLUMN} = nullif(current_setting('{COMPANY_SETTING}', true), '')::bigint"
    f" OR current_setting('{SYSTEM_SETTING}', true) = 'on'"
)


@dataclass(frozen=True)
class Scope:
    company_id: int | None = None
    system: bool = False


NOBODY = Scope()
SYSTEM = Scope(system=True)

# What this process last set on a connection, keyed by the DB-API connection itself (as
# nps_saas/db.py does): a reconnect starts a session with nothing set.
_STATE = "nps_rls_scope"


def _connection(using: str) -> BaseDatabaseWrapper | None:
    connection = connections[using]
    if connection.vendor != "postgresql" or not settings.ROW_LEVEL_SECURITY:
        return None
    return connection


def current(using: str = DEFAULT_DB_ALIAS) -> Scope:
    connection = _connection(using)
    if connection is None or connection.connection is None:
        return NOBODY
    known: tuple[object, Scope] | None = getattr(connection, _STATE, None)
    if known is None or known[0] is not connection.connection:
        return NOBODY
    return known[1]


def activate(scope: Scope, using: str = DEFAULT_DB_ALIAS) -> None:
    """Set ``scope`` on the connection for what follows (one round trip).

    Sent on the driver's own cursor, not Django's: setting who is asking is not one of the
    app's queries, so the query counts of the tests (and Django's query log) keep measuring
    the app's own work; the cost of these statements is measured by ``bench/answer.py``.
    """
    connection = _connection(using)
    if connection is None:
        return
    connection.ensure_connection()
    company = "" if scope.company_id is None else str(int(scope.company_id))
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
            [COMPANY_SETTING, company, SYSTEM_SETTING, "on" if scope.system else ""],
        )
    setattr(connection, _STATE, (connection.connection, scope))


def activate_company(company_id: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """A choke point has found the company: what follows sees only its rows."""
    activate(Scope(company_id=company_id), using)


@contextmanager
def scoped(scope: Scope, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """``scope`` for the block, then whatever was there before."""
    connection = _connection(using)
    if connection is None:
        yield
        return
    # Connected first: what a new session starts with is what the block must give back.
    connection.ensure_connection()
    previous = current(using)
    if previous == scope:
        yield
        return
    activate(scope, using)
    try:
        yield
    finally:
        activate(previous, using)


@contextmanager
def system(*, reason: str, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """A system job: every company's rows for the block. Say why in ``reason``."""
    assert reason, "say why this work may cross companies"
    # One mark for both readers: the database's policies and the single-shard check.
    with system_job(reason), scoped(SYSTEM, using):
        yield


def company_of_row_sql(table: str, column: str) -> str:
    """Statements that set the company of the one row of ``table`` whose ``column`` is the
    (single) parameter, looking it up as a system job, and leave the system marker off: a
    public choke point's own lookup, sent in the same round trip as the query that follows
    (``nps_saas.db.fetch_one(before=...)``), which then runs as that company. No such row:
    no company. Call ``record_company`` with what the query found, or ``activate`` the scope
    to return to. Empty when row-level security is off here.
    """
    if _connection(DEFAULT_DB_ALIAS) is None:
        return ""
    # Only our own names are formatted in; the value is a parameter.
    return (
        f"SELECT set_config('{SYSTEM_SETTING}', 'on', false);"  # noqa: S608
        f" SELECT set_config('{COMPANY_SETTING}', coalesce((SELECT {TENANT_COLUMN}::text"
        f' FROM "{table}" WHERE "{column}" = %s), \'\'), false);'
        f" SELECT set_config('{SYSTEM_SETTING}', '', false);"
    )


def record_company(company_id: int | None) -> None:
    """What ``company_of_row_sql``'s statements set (the row's company, or none)."""
    connection = _connection(DEFAULT_DB_ALIAS)
    if connection is not None:
        scope = NOBODY if company_id is None else Scope(company_id=company_id)
        setattr(connection, _STATE, (connection.connection, scope))


class Lookup:
    """What a public choke point found: ``found(company_id)`` once it knows the company."""

    company_id: int | None = None

    def found(self, company_id: int) -> None:
        self.company_id = company_id


@contextmanager
def lookup(*, reason: str) -> Iterator[Lookup]:
    """A choke point's own lookup (an API key, an answer token): it precedes knowing the
    company, so the block is a system job; after it, the company the block reported with
    ``found()`` is set, or what was there before. Two round trips in all.
    """
    assert reason, "say why this lookup may cross companies"
    connection = _connection(DEFAULT_DB_ALIAS)
    if connection is not None:
        connection.ensure_connection()
    previous = current()
    result = Lookup()
    activate(SYSTEM)
    try:
        with system_job(reason):
            yield result
    finally:
        if result.company_id is None:
            activate(previous)
        else:
            activate_company(result.company_id)


_requests = threading.local()


def serving_request() -> bool:
    """Whether this thread is inside ``RowLevelSecurityMiddleware`` (a request's choke points
    decide what it sees; the test suite asks, see tests/database_role.py)."""
    return bool(getattr(_requests, "active", False))


class RowLevelSecurityMiddleware:
    """Every request starts with nothing visible and leaves the connection as it found it.

    Outermost, so the choke points inside (``CompanyMiddleware``, the API key, the public
    pages) set the company for the rest of the request. Nothing is sent to the database when
    the connection was clean, which in production it always is between requests.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        previous = current()
        if previous != NOBODY:
            activate(NOBODY)
        _requests.active = True
        try:
            return self.get_response(request)
        finally:
            _requests.active = False
            if current() != previous:
                activate(previous)


class RowLevelSecurity(Operation):
    """Enable row-level security and the ``tenant_isolation`` policy on every table with a
    ``company_id`` in the migration state. Idempotent: a migration adding tenant tables ends
    with another ``RowLevelSecurity()`` (``companies/tests/test_rls.py`` fails until it does).
    """

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tenant_tables(to_state.apps):
            for statement in policy_sql(table, quote=schema_editor.quote_name):
                schema_editor.execute(statement)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        for table in tenant_tables(from_state.apps):
            schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {quote(table)}")
            schema_editor.execute(f"ALTER TABLE {quote(table)} DISABLE ROW LEVEL SECURITY")

    def describe(self) -> str:
        return "Row-level security on every table with a company_id"


def app_role_grants(role: str) -> list[str]:
    """SQL that lets ``role`` (which must not own the tables) read and write rows of every
    table there is now: what the tests and the benchmarks connect as. Production grants the
    same once, with default privileges for later tables (docker/postgres/app-role.sh)."""
    return [
        # Roles belong to the whole server: another session may create it at the same moment.
        f"""DO $$ BEGIN CREATE ROLE {role} NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$""",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ]


def tenant_tables(apps: Any) -> list[str]:
    """Every concrete table of ``apps`` (a registry, live or historical) with a company_id."""
    tables = set()
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        if any(getattr(field, "column", None) == TENANT_COLUMN for field in meta.local_fields):
            tables.add(meta.db_table)
    return sorted(tables)


def policy_sql(table: str, *, quote: Any) -> list[str]:
    name = quote(table)
    return [
        f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY} ON {name}",
        f"CREATE POLICY {POLICY} ON {name} USING ({_CONDITION}) WITH CHECK ({_CONDITION})",
    ]
