"""Database plumbing the ORM does not offer: a hot statement PostgreSQL plans once.

PostgreSQL plans every plain statement anew. For a lookup joining several tables that have
many indexes, the planning costs more than the run (the answer pages' token lookup: 0.35 ms
planning for 0.06 ms of execution). A statement prepared on the connection (``PREPARE`` once,
then ``EXECUTE``) is planned once for the connection's life, which with persistent
connections (``CONN_MAX_AGE``, on in production) is many requests.

Prepared statements live in the database session, so they are used only where a session is
the app's own: not on SQLite, and not when ``DISABLE_SERVER_SIDE_CURSORS`` is set, the
setting Django asks for behind a transaction-mode pooler (PgBouncer), where consecutive
statements may reach different sessions. A prepared statement survives a rolled-back
transaction, and PostgreSQL re-plans it by itself when a table it reads changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

_PREPARED = "nps_prepared_statements"


def fetch_one(
    name: str,
    sql: str,
    params: Sequence[Any],
    *,
    before: tuple[str, Sequence[Any]] = ("", ()),
) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (``%s`` placeholders, one per parameter), or None.

    On PostgreSQL run as the statement ``name``, prepared on first use per connection.
    ``name`` must be an SQL identifier of our own, one per ``sql``. ``before``: statements
    (each ending with ``;``) and their parameters, sent in the same round trip, ahead of it.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    prefix, prefix_params = before
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or connection.settings_dict.get(
            "DISABLE_SERVER_SIDE_CURSORS"
        ):
            if prefix:
                cursor.execute(prefix + sql, [*prefix_params, *params])
            else:
                cursor.execute(sql, params)
            return cursor.fetchone()
        # Keyed by the DB-API connection itself: a reconnect starts a session with none.
        raw = connection.connection
        known: tuple[object, set[str]] | None = getattr(connection, _PREPARED, None)
        if known is None or known[0] is not raw:
            known = (raw, set())
            setattr(connection, _PREPARED, known)
        if name not in known[1]:
            numbered = tuple(f"${i}" for i in range(1, len(params) + 1))
            cursor.execute(f"PREPARE {name} AS {sql % numbered}")
            known[1].add(name)
        execute = f"EXECUTE {name} ({', '.join(['%s'] * len(params))})"
        cursor.execute(prefix + execute, [*prefix_params, *params])
        return cursor.fetchone()
