"""``GET /api/v1/audit-log/``: full-access keys of the company only, filters, the API's shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from companies.models import Company
from conftest import KeyPersona

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-log/"


def get(key: KeyPersona, **query: str) -> Any:
    return Client().get(URL, query, HTTP_AUTHORIZATION=f"Bearer {key.key}")


def test_a_full_access_key_reads_its_companys_log(
    api_owner: KeyPersona, api_outsider: KeyPersona, company: Company
) -> None:
    audit_record(
        company=company,
        action=AuditAction.SURVEY_UPDATED,
        target_type="survey",
        target_label="Checkout",
        changes={"name": ["Old", "Checkout"]},
    )
    body = get(api_owner).json()
    [entry] = [e for e in body["results"] if e["action"] == AuditAction.SURVEY_UPDATED]
    assert entry["object"] == "Checkout"
    assert entry["changes"] == {"name": ["Old", "Checkout"]}
    assert entry["actor_kind"] == "system"
    # The other company's key sees only its own entries (its key's creation).
    theirs = get(api_outsider).json()["results"]
    assert all(e["object"] != "Checkout" for e in theirs)


def test_filters_and_bad_input(api_owner: KeyPersona, company: Company) -> None:
    audit_record(company=company, action=AuditAction.SURVEY_CREATED, target_type="survey")
    results = get(api_owner, action=AuditAction.SURVEY_CREATED).json()["results"]
    assert [e["action"] for e in results] == [AuditAction.SURVEY_CREATED]
    assert get(api_owner, object_type="apikey").json()["results"][0]["action"] == (
        AuditAction.API_KEY_CREATED
    )
    bad = get(api_owner, action="nope", since="yesterday")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"action", "since"}


def test_a_read_only_key_gets_403(api_viewer: KeyPersona) -> None:
    assert get(api_viewer).status_code == 403


def test_reading_the_log_records_nothing(api_owner: KeyPersona, company: Company) -> None:
    before = AuditEntry.objects.for_company(company).count()
    get(api_owner)
    assert AuditEntry.objects.for_company(company).count() == before
