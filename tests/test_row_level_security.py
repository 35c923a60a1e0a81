"""PostgreSQL's row-level security, the backstop behind the tenancy choke point (companies/rls.py).

The suite's connections use a role that owns no table (tests/database_role.py), so these
policies bind every query the suite sends: raw SQL here, and every request and task elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import shared_task
from django.apps import apps
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client

from companies import rls
from companies.models import Company
from companies.task_base import TenantTask
from companies.tenancy import TenantModel
from conftest import KeyPersona, Persona
from surveys.services.contacts import contact_upsert
from surveys.services.surveys import survey_create
from tests.database_role import APP_ROLE

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security is PostgreSQL's"
)


def _tenant_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'company_id'
                 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace
            ORDER BY c.relname
            """
        )
        return [name for (name,) in cursor.fetchall()]


def _set(company_id: int | None, system: bool = False) -> None:
    """The two settings, as raw SQL: what any statement of the session then sees."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.company_id', %s, false), set_config('app.system', %s, false)",
            ["" if company_id is None else str(company_id), "on" if system else ""],
        )


def _counts(table: str) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT company_id, count(*) FROM "{table}" GROUP BY company_id')  # noqa: S608
        return dict(cursor.fetchall())


def test_every_tenant_table_has_row_level_security_and_the_policy(db: None) -> None:
    """A new table with a company_id fails here until a migration ends with
    ``RowLevelSecurity()`` (companies/rls.py)."""
    tables = _tenant_tables()
    model_tables = {
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy
    }
    assert model_tables, "no tenant model found"
    assert model_tables <= set(tables), "every TenantModel's table has a company_id column"
    assert set(rls.tenant_tables(apps)) == set(tables)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relrowsecurity", [tables]
        )
        secured = {name for (name,) in cursor.fetchall()}
        cursor.execute(
            "SELECT tablename FROM pg_policies WHERE policyname = %s AND cmd = 'ALL'",
            [rls.POLICY],
        )
        with_policy = {name for (name,) in cursor.fetchall()}
    assert sorted(set(tables) - secured) == []
    assert sorted(set(tables) - with_policy) == []


def test_the_suite_connects_as_a_role_the_policies_bind(db: None) -> None:
    """Neither a superuser nor the tables' owner: either would bypass every policy."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT current_user, r.rolsuper, r.rolbypassrls,
                   (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
                    AND tableowner = current_user)
            FROM pg_roles r WHERE r.rolname = current_user
            """
        )
        user, superuser, bypass, owned = cursor.fetchone()
    assert (user, superuser, bypass, owned) == (APP_ROLE, False, False, 0)


@pytest.fixture
def two_companies(company: Company, other_company: Company) -> Iterator[tuple[Company, Company]]:
    for owner in (company, other_company):
        survey_create(company=owner, name=f"{owner.name} survey")
        contact_upsert(company=owner, email=f"someone@{owner.slug}.test")
    yield company, other_company
    _set(None, system=True)  # test code is a system job again


def test_raw_sql_with_company_a_sees_none_of_b_and_without_a_setting_nothing(
    two_companies: tuple[Company, Company],
) -> None:
    a, b = two_companies
    tables = _tenant_tables()
    _set(None, system=True)
    everything = {table: _counts(table) for table in tables}
    # The fixture wrote rows of both companies to several tables, so "nothing" below is news.
    both = [t for t, counts in everything.items() if a.pk in counts and b.pk in counts]
    assert {"companies_membership", "surveys_survey", "surveys_contact"} <= set(both)

    _set(a.pk)
    for table in tables:
        assert _counts(table) == {k: v for k, v in everything[table].items() if k == a.pk}, table
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM surveys_survey WHERE company_id = %s", [b.pk])
        assert cursor.fetchone() == (0,)
        # Nor can A's session change or delete B's rows: they are not there for it.
        cursor.execute("UPDATE surveys_survey SET name = 'taken' WHERE company_id = %s", [b.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM surveys_contact WHERE company_id = %s", [b.pk])
        assert cursor.rowcount == 0

    _set(None)
    for table in tables:
        assert _counts(table) == {}, table


def test_a_row_for_another_company_cannot_be_written(
    two_companies: tuple[Company, Company],
) -> None:
    a, b = two_companies
    _set(a.pk)
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE surveys_survey SET company_id = %s WHERE company_id = %s", [b.pk, a.pk]
        )


def _app_setting() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(current_setting('app.company_id', true), ''),"
            " coalesce(current_setting('app.system', true), '')"
        )
        row = cursor.fetchone()
    return row[0], row[1]


def test_a_reused_connection_carries_no_tenant_after_a_request(
    owner: Persona, api_owner: KeyPersona
) -> None:
    """As in production between requests: nothing set; each choke point sets its company for
    the request only, and the connection is left as it was found."""
    rls.activate(rls.NOBODY)
    response = owner.client.get(f"/c/{owner.company.slug}/")
    assert response.status_code == 200
    assert _app_setting() == ("", "")
    headers: dict[str, Any] = api_owner.headers
    response = Client().get("/api/v1/company/", **headers)
    assert response.status_code == 200, response.content
    assert _app_setting() == ("", "")
    rls.activate(rls.SYSTEM)


def _visible_surveys() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT company_id FROM surveys_survey")
        return {company_id for (company_id,) in cursor.fetchall()}


@shared_task(name="tests.rls_visible_surveys", base=TenantTask)
def visible_surveys_of(company_id: int) -> list[int]:
    return sorted(_visible_surveys())


@shared_task(name="tests.rls_visible_surveys_sweep", base=TenantTask, system_job=True)
def visible_surveys_sweep() -> list[int]:
    return sorted(_visible_surveys())


@shared_task(name="tests.rls_visible_surveys_unmarked", base=TenantTask)
def visible_surveys_unmarked() -> list[int]:
    return sorted(_visible_surveys())


def test_tasks_see_their_company_sweeps_all_and_unmarked_nothing(
    two_companies: tuple[Company, Company],
) -> None:
    a, b = two_companies
    rls.activate(rls.NOBODY)  # as in a worker between tasks
    run: Any = visible_surveys_of.apply
    assert run(args=[a.pk]).get() == [a.pk]
    assert run(kwargs={"company_id": b.pk}).get() == [b.pk]
    assert visible_surveys_sweep.apply().get() == sorted([a.pk, b.pk])
    assert visible_surveys_unmarked.apply().get() == []
    assert _app_setting() == ("", "")


def test_the_answer_token_lookup_sets_its_company_in_the_same_round_trip(
    two_companies: tuple[Company, Company],
) -> None:
    """The answer pages' choke point: the token's company is set, the unknown token sets none
    and gives back what was there; with row-level security off (or on SQLite) the lookup is
    the plain prepared statement."""
    from django.test.utils import CaptureQueriesContext, override_settings

    from responses.selectors import invitation_for_token
    from responses.tests.conftest import make_contact, make_invitation, make_survey

    a, _b = two_companies
    invitation, token = make_invitation(make_survey(a), make_contact(a))
    invitation_for_token(token=token)  # prepared on the connection's first use
    rls.activate(rls.NOBODY)
    with CaptureQueriesContext(connection) as queries:
        found = invitation_for_token(token=token)
    assert found is not None
    assert found.pk == invitation.pk
    assert len(queries) == 1  # the settings travel with the lookup, in one round trip
    assert _app_setting() == (str(a.pk), "")
    assert rls.current() == rls.Scope(company_id=a.pk)
    assert _visible_surveys() == {a.pk}

    rls.activate(rls.SYSTEM)
    assert invitation_for_token(token=token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert _app_setting() == ("", "on")

    with override_settings(ROW_LEVEL_SECURITY=False):
        found = invitation_for_token(token=token)
    assert found is not None
    assert found.pk == invitation.pk
