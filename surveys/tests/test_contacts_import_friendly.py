"""Import, friendlier: first + last name joined, sample values on the mapping screen, a
malformed phone beside a valid email imported with a warning, ``key=value`` properties."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from companies.models import Company, Role
from conftest import KeyPersona, Persona
from surveys.imports import (
    _ErrorReport,
    contact_import_create,
    contact_import_samples,
    contact_import_start,
    import_rows,
    suggest_mapping,
    validate_mapping,
)
from surveys.models import Contact, ContactImport, ImportStatus
from surveys.services.contacts import contact_upsert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def _csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode()


def _run(
    company: Company,
    rows: list[list[str]],
    capture: Any,
    mapping: dict[str, str] | None = None,
) -> ContactImport:
    upload = SimpleUploadedFile("people.csv", _csv(rows))
    contact_import = contact_import_create(company=company, upload=upload)
    with capture(execute=True):
        contact_import_start(company=company, contact_import=contact_import, mapping=mapping)
    contact_import.refresh_from_db()
    return contact_import


def _contact(company: Company, email: str) -> Contact:
    return Contact.objects.for_company(company).get(email=email)


def _report(contact_import: ContactImport) -> list[list[str]]:
    with contact_import.error_report.open("rb") as report:
        return list(csv.reader(io.StringIO(report.read().decode("utf-8-sig"))))


# --- First and last name --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last"),
    [("first_name", "last_name"), ("First name", "Last name"), ("Имя", "Фамилия")],
)
def test_first_and_last_name_headers_are_detected(first: str, last: str) -> None:
    mapping = suggest_mapping(["Email", first, last])
    assert mapping == {"Email": "email", first: "first_name", last: "last_name"}


def test_imya_alone_is_still_the_whole_name() -> None:
    assert suggest_mapping(["Почта", "Имя"]) == {"Почта": "email", "Имя": "name"}


def test_first_and_last_name_are_joined_into_the_name(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    contact_upsert(company=company, email="old@example.com", name="Kept Name")
    rows = [
        ["Email", "Имя", "Фамилия"],
        ["ann@example.com", "Анна", "Сейткали"],
        ["bob@example.com", "Bob", ""],
        ["old@example.com", "", ""],  # both blank: the name is left as it is
    ]
    result = _run(company, rows, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert result.mapping == {"Email": "email", "Имя": "first_name", "Фамилия": "last_name"}
    assert _contact(company, "ann@example.com").name == "Анна Сейткали"
    assert _contact(company, "bob@example.com").name == "Bob"
    assert _contact(company, "old@example.com").name == "Kept Name"


def test_name_parts_mapped_by_hand_and_a_full_name_column_wins(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    rows = [
        ["mail", "given", "family", "full"],
        ["a@example.com", "Ann", "Lee", ""],
        ["b@example.com", "Bob", "Ray", "Robert Ray Jr."],
    ]
    mapping = {"mail": "email", "given": "first_name", "family": "last_name", "full": "name"}
    result = _run(company, rows, django_capture_on_commit_callbacks, mapping=mapping)
    assert result.status == ImportStatus.DONE
    assert _contact(company, "a@example.com").name == "Ann Lee"
    assert _contact(company, "b@example.com").name == "Robert Ray Jr."
    assert _contact(company, "a@example.com").properties == {}


def test_the_mapping_screen_offers_first_and_last_name() -> None:
    assert validate_mapping(["e", "f", "l"], {"e": "email", "f": "first_name", "l": "last_name"})
    with pytest.raises(Exception, match="both go to first_name"):
        validate_mapping(["e", "f", "g"], {"e": "email", "f": "first_name", "g": "first_name"})


# --- Sample values ---------------------------------------------------------------------------


def test_samples_are_the_first_distinct_non_blank_values_per_column(company: Company) -> None:
    rows = [
        ["Email", "Plan", "Note"],
        ["a@example.com", "", ""],
        ["b@example.com", "pro", ""],
        ["c@example.com", "pro", ""],
        ["d@example.com", "free", ""],
        ["e@example.com", "team", ""],
    ]
    upload = SimpleUploadedFile("people.csv", _csv(rows, delimiter=";"))
    contact_import = contact_import_create(company=company, upload=upload)
    assert contact_import_samples(contact_import=contact_import) == {
        "Email": ["a@example.com", "b@example.com", "c@example.com"],
        "Plan": ["pro", "free", "team"],
        "Note": [],
    }


def test_the_mapping_screen_shows_sample_values(
    personas: dict[str, Persona], company: Company
) -> None:
    client = personas[Role.MANAGER].client
    content = _csv([["Mail", "First name", "Last name"], ["ok@example.com", "Zara", "Quill"]])
    response = client.post(
        reverse("contacts:import", kwargs={"company_slug": company.slug}),
        {"file": SimpleUploadedFile("l.csv", content)},
    )
    page = client.get(response["Location"]).content.decode()
    assert '<code class="sample">ok@example.com</code>' in page
    assert '<code class="sample">Zara</code>' in page
    assert '<code class="sample">Quill</code>' in page
    assert 'value="first_name" selected' in page
    assert 'value="last_name" selected' in page


# --- A malformed phone beside a valid email ----------------------------------------------------


def test_a_bad_phone_beside_a_valid_email_is_a_warning_not_a_rejection(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    contact_upsert(company=company, email="had@example.com", phone="+77011234567")
    rows = [
        ["Email", "Phone", "Name", "Language"],
        ["ann@example.com", "12", "Ann", "ru"],  # imported, phone left out
        ["had@example.com", "call me", "Had", ""],  # the phone it had is kept
        ["", "12", "Phoneless", ""],  # the phone was its address: rejected
        ["cat@example.com", "12", "Cat", "xx"],  # rejected for its language: all reported
        ["dan@example.com", "+7 701 765 4321", "Dan", ""],
    ]
    result = _run(company, rows, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert (result.created_count, result.updated_count, result.invalid_count) == (2, 1, 2)
    ann = _contact(company, "ann@example.com")
    assert (ann.name, ann.phone, ann.language) == ("Ann", None, "ru")
    assert _contact(company, "had@example.com").phone == "+77011234567"
    assert _contact(company, "had@example.com").name == "Had"
    assert _contact(company, "dan@example.com").phone == "+77017654321"
    assert not Contact.objects.for_company(company).filter(name__in=["Phoneless", "Cat"]).exists()

    kept = [(e["line"], e["column"], bool(e.get("warning"))) for e in result.errors]
    assert kept == [
        (2, "Phone", True),
        (3, "Phone", True),
        (4, "Phone", False),
        (5, "Phone", False),
        (5, "Language", False),
    ]
    assert "phone was left out" in result.errors[0]["reason"]

    report = _report(result)
    assert report[0] == [*rows[0], "error_line", "error"]
    assert [r[4] for r in report[1:]] == ["2", "3", "4", "5"]
    assert report[1][:4] == rows[1]
    assert report[1][5].startswith("Warning: Phone:")
    assert report[3][5].startswith("Phone:")
    assert "Language:" in report[4][5]


def test_a_warned_row_refused_when_written_is_reported_once_as_an_error(
    company: Company,
) -> None:
    contact_upsert(company=company, email="taken@example.com", external_id="A")
    report = _ErrorReport(["id", "email", "phone"])
    counts = import_rows(
        company=company,
        headers=["id", "email", "phone"],
        mapping={"id": "external_id", "email": "email", "phone": "phone"},
        rows=[["B", "taken@example.com", "12"]],
        report=report,
    )
    assert (counts.invalid, counts.warned, counts.created) == (1, 0, 0)
    assert [(e["column"], bool(e.get("warning"))) for e in report.kept] == [
        ("phone", False),
        ("external_id", False),
    ]


def test_the_import_page_marks_warnings(
    personas: dict[str, Persona], company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = personas[Role.MANAGER].client
    result = _run(
        company, [["email", "phone"], ["w@example.com", "12"]], django_capture_on_commit_callbacks
    )
    assert result.invalid_count == 0
    page = client.get(
        reverse(
            "contacts:import_detail",
            kwargs={"company_slug": company.slug, "import_id": result.public_id},
        )
    ).content.decode()
    assert 'data-testid="import-warning"' in page
    assert "phone was left out" in page
    assert (
        reverse(
            "contacts:import_errors",
            kwargs={"company_slug": company.slug, "import_id": result.public_id},
        )
        in page
    )


# --- key=value properties --------------------------------------------------------------------


def test_key_value_properties_column(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    rows = [
        ["Email", "Properties", "City"],
        ["a@example.com", "plan=pro; seats = 3", "Almaty"],
        ["b@example.com", "plan=free\nregion=south\n", ""],
        ["c@example.com", '{"plan": "team", "vip": true}', ""],
        ["d@example.com", "plan=pro; oops; =x; note=", ""],
    ]
    result = _run(company, rows, django_capture_on_commit_callbacks)
    assert result.mapping["Properties"] == "properties"
    assert result.status == ImportStatus.DONE
    assert (result.created_count, result.invalid_count) == (4, 0)
    assert _contact(company, "a@example.com").properties == {
        "plan": "pro",
        "seats": "3",
        "City": "Almaty",
    }
    assert _contact(company, "b@example.com").properties == {"plan": "free", "region": "south"}
    assert _contact(company, "c@example.com").properties == {"plan": "team", "vip": True}
    assert _contact(company, "d@example.com").properties == {"plan": "pro"}
    warnings = [(e["line"], e["reason"]) for e in result.errors]
    assert [line for line, _ in warnings] == [5, 5]
    assert "“oops” is not name=value" in warnings[0][1]
    assert all(e.get("warning") for e in result.errors)


# --- Speed: no query per row -------------------------------------------------------------------


def test_the_new_columns_add_no_query_per_row(company: Company) -> None:
    headers = ["email", "first_name", "last_name", "phone", "properties"]
    mapping = {h: h for h in headers}

    def queries(n: int) -> int:
        rows = [
            [f"p{n}-{i}@example.com", "Ann", "Lee", "12" if i % 2 else "", "plan=pro; seats=2"]
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as captured:
            import_rows(
                company=company,
                headers=headers,
                mapping=mapping,
                rows=rows,
                report=_ErrorReport(headers),
                chunk_size=1000,
            )
        return len(captured.captured_queries)

    assert queries(10) == queries(300)


def test_the_api_marks_warnings_and_takes_the_new_targets(
    api_owner: KeyPersona, company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_owner.key}")
    content = _csv(
        [["mail", "a", "b", "tel", "props"], ["x@example.com", "Ann", "Lee", "1", "k=v"]]
    )
    mapping = '{"a": "first_name", "b": "last_name", "props": "properties"}'
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/contact-imports/",
            {"file": SimpleUploadedFile("c.csv", content), "mapping": mapping},
        )
    assert response.status_code == 202
    body = client.get(f"/api/v1/contact-imports/{response.json()['id']}/").json()
    assert (body["created_count"], body["invalid_count"]) == (1, 0)
    assert body["errors"] == [
        {"line": 2, "column": "tel", "reason": body["errors"][0]["reason"], "warning": True}
    ]
    contact = _contact(company, "x@example.com")
    assert (contact.name, contact.phone, contact.properties) == ("Ann Lee", None, {"k": "v"})
