"""nps_saas/db.py: a statement prepared once per connection, re-prepared after a reconnect."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from nps_saas.db import fetch_one

pytestmark = pytest.mark.django_db

SQL = "SELECT %s::int + 1, %s::text"


def _run(*params: object) -> tuple[tuple[object, ...] | None, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        row = fetch_one("test_db_add_one", SQL, list(params))
    return row, [q["sql"] for q in captured.captured_queries]


@pytest.mark.django_db(transaction=True)  # a test in a transaction cannot reconnect
def test_prepared_once_per_connection_and_again_after_a_reconnect():
    connection.close()
    row, first = _run(41, "a")
    assert row == (42, "a")
    assert first[0].startswith("PREPARE test_db_add_one AS SELECT $1::int + 1, $2::text")
    assert first[1].startswith("EXECUTE test_db_add_one")
    row, second = _run(1, "b")
    assert row == (2, "b")
    assert [q.split()[0] for q in second] == ["EXECUTE"]
    # A new session has no prepared statements: it is prepared there again.
    connection.close()
    row, third = _run(2, "c")
    assert row == (3, "c")
    assert [q.split()[0] for q in third] == ["PREPARE", "EXECUTE"]


def test_no_row_is_none():
    assert fetch_one("test_db_none", "SELECT 1 WHERE %s::int < 0", [1]) is None


def test_plain_statements_behind_a_transaction_pooler():
    # DISABLE_SERVER_SIDE_CURSORS is what Django asks for behind PgBouncer in transaction
    # mode, where a session's prepared statement may not be there for the next statement.
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    try:
        row, queries = _run(9, "d")
    finally:
        connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = False
    assert row == (10, "d")
    assert [q.split()[0] for q in queries] == ["SELECT"]
