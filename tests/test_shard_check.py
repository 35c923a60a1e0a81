"""The single-shard rule of tests/shard_check.py, and its recorder, on known statements."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from companies.models import Company, Membership
from companies.system_jobs import system_job
from tests.shard_check import RECORDER, ROOT, Recorder, analyse

ONE = [
    'SELECT "s"."id" FROM "surveys_survey" "s" WHERE "s"."company_id" = %s LIMIT 21',
    'SELECT "surveys_survey"."id" FROM "surveys_survey" WHERE ("surveys_survey"."company_id" = %s'
    ' AND "surveys_survey"."id" = %s)',
    # a join made single-shard by the equality of the two company_id columns
    'SELECT "r"."id" FROM "responses_response" "r" INNER JOIN "surveys_survey" "s"'
    ' ON ("r"."survey_id" = "s"."id" AND "r"."company_id" = "s"."company_id")'
    ' WHERE "s"."company_id" = %s',
    # … as Django writes it for a foreign key between tenant tables (companies/tenancy.py)
    'SELECT "r"."id" FROM "responses_response" INNER JOIN "surveys_survey" ON'
    ' ("responses_response"."survey_id" = "surveys_survey"."id" AND'
    ' ("surveys_survey"."company_id" = ("responses_response"."company_id")))'
    ' WHERE "responses_response"."company_id" = %s',
    # … or by restricting both tables
    'SELECT "r"."id" FROM "responses_response" "r" INNER JOIN "surveys_survey" "s"'
    ' ON ("r"."survey_id" = "s"."id") WHERE ("r"."company_id" = %s AND "s"."company_id" = %s)',
    'SELECT "id" FROM "surveys_contact" WHERE "surveys_contact"."company_id" IN (%s)',
    'UPDATE "surveys_invitation" SET "status" = %s WHERE ("company_id" = %s AND "id" = %s)',
    'UPDATE "surveys_invitation" AS t SET "status" = v.value FROM (VALUES (%s, %s)) AS v(id, value)'
    ' WHERE t."id" = v.id AND t."company_id" = %s',
    # a correlated subquery tied to a restricted outer table
    'SELECT "c"."id" FROM "surveys_contact" "c" WHERE ("c"."company_id" = %s AND EXISTS('
    'SELECT 1 FROM "surveys_invitation" U0 WHERE (U0."contact_id" = "c"."id"'
    ' AND U0."company_id" = "c"."company_id")))',
    # reference and global tables only
    'SELECT "companies_company"."id" FROM "companies_company"'
    ' WHERE "companies_company"."slug" = %s',
    'SELECT "companies_user"."id" FROM "companies_user" WHERE "companies_user"."email" = %s',
    "SAVEPOINT s1",
    # rows of one company from arrays, and their events (surveys/services/invitations.py)
    'WITH created AS (INSERT INTO "surveys_invitation" ("contact_id", "company_id")'
    " SELECT r.contact_id, %s FROM unnest(%s::bigint[]) AS r(contact_id) RETURNING id)"
    ' INSERT INTO "surveys_invitationevent" (company_id, invitation_id) SELECT %s, id FROM created',
    'SELECT "x" FROM "surveys_contact" WHERE ("company_id" = %s AND "email" LIKE %s ESCAPE \'\\\')'
    " AND '100%%' <> ''",
]

CROSS = [
    (
        'SELECT "surveys_survey"."id" FROM "surveys_survey" WHERE "surveys_survey"."id" = %s',
        "surveys_survey",
    ),
    (
        'SELECT "id" FROM "surveys_contact" WHERE "surveys_contact"."company_id" IN (%s, %s)',
        "surveys_contact",
    ),
    # an OR restricts nothing
    (
        'SELECT "id" FROM "surveys_contact" WHERE ("surveys_contact"."company_id" = %s'
        ' OR "surveys_contact"."id" = %s)',
        "surveys_contact",
    ),
    # the joined table is free
    (
        'SELECT "r"."id" FROM "responses_response" "r" INNER JOIN "surveys_survey" "s"'
        ' ON ("r"."survey_id" = "s"."id") WHERE "r"."company_id" = %s',
        "surveys_survey",
    ),
    # Django's UPDATE through a subquery: the outer table is free
    (
        'UPDATE "surveys_invitation" SET "status" = %s WHERE "surveys_invitation"."id" IN ('
        'SELECT U0."id" FROM "surveys_invitation" U0 WHERE U0."company_id" = %s)',
        "surveys_invitation",
    ),
    # a cascade by foreign key
    (
        'DELETE FROM "responses_followup" WHERE "responses_followup"."response_id" IN (%s)',
        "responses_followup",
    ),
    ('INSERT INTO "surveys_contact" ("email") VALUES (%s)', "company_id"),
]


@pytest.mark.parametrize("sql", ONE)
def test_statements_restricted_to_one_company_route_to_one_shard(sql: str) -> None:
    verdict = analyse(sql)
    assert verdict.single_shard, verdict.why


@pytest.mark.parametrize(("sql", "named"), CROSS)
def test_statements_not_restricted_to_one_company_are_cross_shard(sql: str, named: str) -> None:
    verdict = analyse(sql)
    assert not verdict.single_shard
    assert named in verdict.why


def test_an_insert_is_single_shard_only_when_its_rows_share_one_company() -> None:
    sql = 'INSERT INTO "surveys_contact" ("email", "company_id") VALUES (%s, %s), (%s, %s)'
    verdict = analyse(sql)
    assert verdict.single_shard
    assert verdict.same_params == (1, 3)


PROBE = """
def raw(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)

def fetch(queryset):
    return list(queryset)
"""


def _product_code() -> dict[str, Any]:
    """Functions whose frames the recorder takes for product code (their file is no test)."""
    namespace: dict[str, Any] = {"connection": connection}
    exec(compile(PROBE, str(ROOT / "companies" / "probe.py"), "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.django_db
def test_the_recorder_counts_product_statements_not_tests_nor_marked_system_jobs(
    company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RECORDER, "active", False)  # the session's: the probe is not a finding
    recorder = Recorder(active=True)
    unmarked = Membership.objects.unscoped(reason="probe").filter(pk=0)
    by_id = 'SELECT "id" FROM "companies_membership" WHERE "companies_membership"."id" = %s'

    product = _product_code()
    with connection.execute_wrapper(recorder):
        with connection.cursor() as cursor:
            cursor.execute(by_id, [0])  # a test's own statement: not the product's
        product["raw"](by_id, [0])
        product["fetch"](Membership.objects.for_company(company))
        product["fetch"](unmarked)  # .unscoped(reason=...) marks a system job
        with system_job("probe job"):
            product["raw"](by_id, [0])
    sites = {site for site, _sql, _why in recorder.violations}
    assert sites == {"companies/probe.py::raw"}
    assert sum(recorder.violations.values()) == 1
    assert recorder.system_jobs == {"probe": 1, "probe job": 1}


@pytest.mark.django_db
def test_a_tenant_rows_save_and_reload_name_its_company(company: Company) -> None:
    from django.test.utils import CaptureQueriesContext

    membership = Membership.objects.for_company(company).get()
    partial = Membership.objects.for_company(company).only("id", "company_id").get()
    with CaptureQueriesContext(connection) as queries:
        membership.role = "admin"
        membership.save(update_fields=["role"])
        membership.refresh_from_db()
        assert partial.role == "admin"  # a deferred field, loaded on access
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 3
    for sql in statements:
        # The captured SQL has its values inlined: put placeholders back for the rule.
        verdict = analyse(
            sql.replace(f"= {company.pk}", "= %s").replace(f"= {membership.pk}", "= %s")
        )
        assert verdict.single_shard, (verdict.why, sql)


@pytest.mark.django_db
def test_a_tenant_rows_foreign_key_loads_within_its_company(company: Company) -> None:
    """``invitation.survey``: a key to another tenant row is loaded with the company named
    (one shard); a key to a table without one (the company itself, a user) as Django does.
    The row is the one the key names."""
    from django.test.utils import CaptureQueriesContext

    from surveys.models import Contact, Invitation, Survey

    survey = Survey.objects.create(company=company, name="Loaded lazily")
    contact = Contact.objects.create(company=company, email="lazy@example.com")
    invitation = Invitation.objects.create(
        company=company, survey=survey, contact=contact, channel="email", token_hash="x" * 64
    )
    fresh = Invitation.objects.for_company(company).get(pk=invitation.pk)
    with CaptureQueriesContext(connection) as queries:
        assert fresh.survey == survey
        assert fresh.contact == contact
        assert fresh.company == company
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 3
    for sql in statements[:2]:
        assert f'"company_id" = {company.pk}' in sql, sql
        verdict = analyse(
            sql.replace(f"= {company.pk}", "= %s")
            .replace(f"= {survey.pk}", "= %s")
            .replace(f"= {contact.pk}", "= %s")
        )
        assert verdict.single_shard, (verdict.why, sql)


@pytest.mark.django_db
def test_a_join_along_a_tenant_foreign_key_equates_the_companies(company: Company) -> None:
    """``select_related`` and a filter across a foreign key join the other tenant table on
    its company too, both ways, so ``company_id = %s`` on one restricts both (one shard),
    and the rows are the same."""
    from responses.models import Response
    from surveys.models import Contact, Survey

    survey = Survey.objects.create(company=company, name="Joined")
    contact = Contact.objects.create(company=company, email="joined@example.com")
    Response.objects.create(company=company, survey=survey, contact=contact, score=9)
    queries: list[Any] = [
        Response.objects.for_company(company).select_related("survey", "contact"),
        Response.objects.for_company(company).exclude(survey__status="archived"),
        Survey.objects.for_company(company).filter(responses__score__gte=9),
    ]
    for queryset in queries:
        sql, _params = queryset.query.sql_with_params()
        assert '."company_id" = ("' in sql, sql
        verdict = analyse(sql)
        assert verdict.single_shard, (verdict.why, sql)
        assert queryset.count() == 1
    joined = queries[0].get()
    assert (joined.survey, joined.contact) == (survey, contact)


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_a_deletion_finds_and_deletes_what_it_cascades_to_within_its_company(
    company: Company, other_company: Company, how: str
) -> None:
    """Deleting a survey cascades to its invitations, their events, its responses and their
    follow-ups: every statement (the lookups of what cascades, the deletions) names the
    company (one shard), and exactly that survey's rows go, not another company's."""
    from responses.models import Followup, Response
    from surveys.models import Contact, Invitation, InvitationEvent, Survey

    def survey_with_everything(owner: Company, n: int) -> Survey:
        survey = Survey.objects.create(company=owner, name=f"Doomed {n}")
        contact = Contact.objects.create(company=owner, email=f"c{n}@example.com")
        invitation = Invitation.objects.create(
            company=owner, survey=survey, contact=contact, channel="email", token_hash=f"{n}" * 64
        )
        InvitationEvent.objects.create(company=owner, invitation=invitation, event="sent")
        response = Response.objects.create(
            company=owner, survey=survey, contact=contact, invitation=invitation, score=2
        )
        Followup.objects.create(
            company=owner, response=response, survey=survey, score=2, due_at=response.created_at
        )
        return survey

    doomed = survey_with_everything(company, 1)
    kept = survey_with_everything(company, 2)
    theirs = survey_with_everything(other_company, 3)
    statements: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        if how == "instance":
            _deleted, by_model = doomed.delete()
        else:
            _deleted, by_model = Survey.objects.for_company(company).filter(pk=doomed.pk).delete()
    assert by_model["surveys.Survey"] == 1
    assert by_model["surveys.Invitation"] == 1
    assert by_model["surveys.InvitationEvent"] == 1
    assert by_model["responses.Response"] == 1
    assert by_model["responses.Followup"] == 1
    tenant_statements = [sql for sql in statements if '"company_id"' in sql or "DELETE" in sql]
    assert any(sql.startswith("DELETE") for sql in tenant_statements)
    for sql in statements:
        verdict = analyse(sql)
        assert verdict.single_shard, (verdict.why, sql)
    if how == "instance":
        assert doomed.pk is None
    for survey in (kept, theirs):
        owner = survey.company
        assert Survey.objects.for_company(owner).filter(pk=survey.pk).exists()
        assert Invitation.objects.for_company(owner).filter(survey=survey).count() == 1
        assert InvitationEvent.objects.for_company(owner).filter(invitation__survey=survey).exists()
        assert Response.objects.for_company(owner).filter(survey=survey).count() == 1
        assert Followup.objects.for_company(owner).filter(survey=survey).count() == 1
