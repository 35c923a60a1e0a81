"""The audit log page and its CSV export: owners and admins only, filters, keyset pages at
a constant number of queries, times in the company's zone, formula-escaped and logged CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from audit.models import (
    CHANGE_LABELS,
    TARGET_TYPES,
    ActorKind,
    AuditAction,
    AuditEntry,
    _field_label,
    _models_by_name,
)
from audit.services import audit_record
from companies.models import Company, Membership, Role
from conftest import Persona

pytestmark = pytest.mark.django_db


def log_url(company: Company) -> str:
    return reverse("audit:log", kwargs={"company_slug": company.slug})


def export_url(company: Company) -> str:
    return reverse("audit:export-csv", kwargs={"company_slug": company.slug})


def body(response: Any) -> bytes:
    """A streamed download, read to the end."""
    return b"".join(response.streaming_content)


def add_entries(company: Company, n: int, **fields: str) -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(
            company=company,
            action=fields.get("action", AuditAction.SURVEY_UPDATED),
            actor_kind=ActorKind.SYSTEM,
            target_type="survey",
            target_label=f"Survey {i}",
            changes={"name": [f"old {i}", f"new {i}"]},
        )
        for i in range(n)
    )


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_read_it(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    add_entries(company, 1)
    page = personas[role].client.get(log_url(company))
    assert page.status_code == 200
    assert "Survey 0" in page.content.decode()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_get_403(personas: dict[str, Persona], company: Company, role: str) -> None:
    client = personas[role].client
    assert client.get(log_url(company)).status_code == 403
    assert client.get(export_url(company)).status_code == 403


def test_an_outsider_gets_404_and_never_sees_another_companys_entries(
    outsider: Persona, company: Company, other_company: Company
) -> None:
    add_entries(company, 1)
    assert outsider.client.get(log_url(company)).status_code == 404
    assert outsider.client.get(export_url(company)).status_code == 404
    own = outsider.client.get(log_url(other_company)).content.decode()
    assert "Survey 0" not in own


def test_filters(personas: dict[str, Persona], company: Company, owner: Persona) -> None:
    admin = personas[Role.ADMIN]
    AuditEntry.objects.for_company(company).delete()  # the fixtures' sign-ins
    audit_record(
        company=company,
        action=AuditAction.API_KEY_CREATED,
        target_type="apikey",
        target_label="CI key",
    )
    add_entries(company, 2)
    AuditEntry.objects.for_company(company).filter(target_label="Survey 1").update(
        created_at=datetime(2026, 1, 5, 20, 0, tzinfo=UTC),
        actor_user=admin.user,
        actor_kind=ActorKind.MEMBER,
        actor_label=admin.user.email,
    )
    client = owner.client

    def shown(**query: str) -> set[str]:
        page = client.get(log_url(company), query)
        assert page.status_code == 200
        text = page.content.decode()
        return {label for label in ("CI key", "Survey 0", "Survey 1") if label in text}

    assert shown() == {"CI key", "Survey 0", "Survey 1"}
    assert shown(action=AuditAction.API_KEY_CREATED) == {"CI key"}
    assert shown(target_type="survey") == {"Survey 0", "Survey 1"}
    member = Membership.objects.for_company(company).get(user=admin.user)
    assert shown(actor=f"m:{member.public_id}") == {"Survey 1"}
    assert shown(actor="system") == {"CI key", "Survey 0"}
    assert shown(since="2026-01-05", until="2026-01-05") == {"Survey 1"}
    assert shown(until="2026-01-04") == set()


def test_bad_filters_are_form_errors(owner: Persona, company: Company) -> None:
    page = owner.client.get(log_url(company), {"since": "2026-02-01", "until": "2026-01-01"})
    assert page.status_code == 200
    assert "The end date is before the start date." in page.content.decode()
    page = owner.client.get(log_url(company), {"action": "nope", "since": "yesterday"})
    assert page.status_code == 200
    assert page.content.decode().count('role="alert"') >= 2


def test_times_are_in_the_companys_zone(owner: Persona, company: Company) -> None:
    company.time_zone = "Asia/Almaty"  # UTC+5
    company.save(update_fields=["time_zone"])
    add_entries(company, 1)
    AuditEntry.objects.for_company(company).filter(target_label="Survey 0").update(
        created_at=datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
    )
    page = owner.client.get(log_url(company), {"target_type": "survey"}).content.decode()
    assert "11 Mar 2026, 01:30" in page
    export = body(owner.client.get(export_url(company), {"target_type": "survey"}))
    assert "2026-03-11T01:30:00+05:00" in export.decode("utf-8-sig")


def test_pages_cost_the_same_queries_at_any_size(owner: Persona, company: Company) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner.client.get(log_url(company)).status_code == 200
        return len(captured)

    add_entries(company, 3)
    few = queries()
    add_entries(company, 120)
    assert queries() == few


def test_pages_walk_every_entry_once(owner: Persona, company: Company) -> None:
    AuditEntry.objects.for_company(company).delete()
    add_entries(company, 120)
    seen: list[str] = []
    url = log_url(company) + "?target_type=survey"
    while url:
        page = owner.client.get(url)
        seen += page.context["page"].entries and [
            e.target_label for e in page.context["page"].entries
        ]
        cursor = page.context["page"].next_cursor
        url = f"{log_url(company)}?target_type=survey&after={cursor}" if cursor else ""
    assert sorted(seen) == sorted(f"Survey {i}" for i in range(120))
    for garbage in ("garbage", "9" * 40 + "_1", "1_x"):
        assert owner.client.get(log_url(company), {"after": garbage}).status_code == 200


def test_csv_export_is_escaped_filtered_and_logged(owner: Persona, company: Company) -> None:
    audit_record(
        company=company,
        action=AuditAction.SURVEY_CREATED,
        target_type="survey",
        target_label='=HYPERLINK("https://evil.example","x")',
    )
    response = owner.client.get(export_url(company), {"action": AuditAction.SURVEY_CREATED})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"))))
    assert rows[0][:3] == ["time", "action", "actor_kind"]
    assert [row[7] for row in rows[1:]] == ['\'=HYPERLINK("https://evil.example","x")']

    [download] = AuditEntry.objects.for_company(company).filter(
        action=AuditAction.EXPORT_DOWNLOADED, target_type="audit_log"
    )
    assert download.actor_user == owner.user
    assert download.changes["filters"] == [None, {"action": AuditAction.SURVEY_CREATED}]


def test_changes_read_in_the_readers_language_not_as_field_names(
    personas: dict[str, Persona], company: Company
) -> None:
    """The page names a changed field by its label (a Russian reader reads "Название"); the
    CSV keeps the machine name for the machines that read it."""
    add_entries(company, 1)
    owner = personas[Role.OWNER]
    owner.client.cookies["django_language"] = "ru"
    page = owner.client.get(log_url(company)).content.decode()
    assert '<span class="muted">Название</span>: old 0 → new 0' in page
    assert "<code>name</code>" not in page
    exported = body(owner.client.get(export_url(company))).decode("utf-8-sig")
    assert '"name"' in exported


# Models whose entries name only these changes, written by hand (an import's own bookkeeping
# fields are never audited).
ONLY_NAMED = {"delightedimport": ["kind", "survey"]}


@pytest.mark.parametrize("model_name", sorted(set(TARGET_TYPES)))
def test_every_field_an_entry_can_name_has_a_russian_label(model_name: str) -> None:
    """Each editable field of an audited model, and each change name the services write
    outside a model, reads in Russian on the page (not as "Revenue property")."""
    model = _models_by_name().get(model_name)
    names = ONLY_NAMED.get(model_name) or [
        field.name
        for field in (model._meta.concrete_fields if model else [])
        if field.editable and not field.primary_key and field.name != "company"
    ]
    if model is None:  # an export or a person: the names services write by hand
        names = list(CHANGE_LABELS)
    untranslated = []
    with translation.override("ru"):
        for name in names:
            label = _field_label(model, name)
            # Russian, or an acronym Russian keeps (URL)
            if not (any("а" <= ch.lower() <= "я" for ch in label) or label.isupper()):
                untranslated.append((name, label))
    assert untranslated == []
