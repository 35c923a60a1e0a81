"""Contact import: CSV and XLSX, mapping, bad rows, re-import, atomic chunks, bounded work."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from openpyxl import Workbook

from companies.models import Company
from surveys import imports
from surveys.imports import (
    _ErrorReport,
    contact_import_create,
    contact_import_start,
    import_rows,
    suggest_mapping,
    validate_mapping,
)
from surveys.models import Contact, ContactImport, ImportStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def _csv(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _run(
    company: Company,
    name: str,
    content: bytes,
    django_capture_on_commit_callbacks: Any,
    mapping: dict[str, str] | None = None,
) -> ContactImport:
    upload = SimpleUploadedFile(name, content)
    contact_import = contact_import_create(company=company, upload=upload)
    with django_capture_on_commit_callbacks(execute=True):
        contact_import_start(company=company, contact_import=contact_import, mapping=mapping)
    contact_import.refresh_from_db()
    return contact_import


def _contacts(company: Company) -> dict[str, Contact]:
    return {c.email or c.phone or "": c for c in Contact.objects.for_company(company)}


BAD_ROWS = [
    ["Email", "Phone", "Name", "Language", "Plan", "Seats"],
    ["ann@example.com", "+7 701 123 4567", "Ann", "ru", "pro", "3"],
    ["not-an-email", "", "Bob", "en", "free", "1"],
    ["", "", "", "", "", ""],  # blank: skipped, still counts as a line
    ["cat@example.com", "12", "Cat", "de", "free", "2"],
    ["", "", "Nobody", "", "", ""],
]


def test_csv_import_reports_bad_rows_with_lines_and_reasons(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    result = _run(company, "people.csv", _csv(BAD_ROWS), django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert (result.created_count, result.updated_count, result.invalid_count) == (1, 0, 3)
    assert result.rows_total == 4
    contacts = _contacts(company)
    assert set(contacts) == {"ann@example.com"}
    ann = contacts["ann@example.com"]
    assert ann.phone == "+77011234567"
    assert ann.language == "ru"
    assert ann.properties == {"Plan": "pro", "Seats": "3"}
    by_line: dict[int, list[tuple[str, str]]] = {}
    for error in result.errors:
        by_line.setdefault(error["line"], []).append((error["column"], error["reason"]))
    assert sorted(by_line) == [3, 5, 6]
    assert by_line[3][0][0] == "Email"
    assert {column for column, _ in by_line[5]} == {"Phone", "Language"}
    assert "email address or a phone" in by_line[6][0][1]
    # The downloadable report: original cells + line + reason, one row per bad line.
    with result.error_report.open("rb") as report:
        rows = list(csv.reader(io.StringIO(report.read().decode("utf-8-sig"))))
    assert rows[0] == [*BAD_ROWS[0], "error_line", "error"]
    assert [row[:6] for row in rows[1:]] == [BAD_ROWS[2], BAD_ROWS[4], BAD_ROWS[5]]
    assert [row[6] for row in rows[1:]] == ["3", "5", "6"]
    assert "Unknown language" in rows[2][7]


def test_xlsx_import_with_typed_cells_and_bad_rows(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    company.country = "KZ"
    company.save()
    content = _xlsx(
        [
            ["external id", "E-mail", "Mobile", "Seats", "VIP", "TZ"],
            [1001, "Dan@Example.com", 87011234567, 5, True, "Asia/Almaty"],
            [1002, "eve@example.com", None, 2.5, False, "Nowhere/City"],
        ]
    )
    result = _run(company, "people.xlsx", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert result.created_count == 1
    assert result.invalid_count == 1
    dan = _contacts(company)["dan@example.com"]
    assert dan.external_id == "1001"
    assert dan.phone == "+77011234567"
    assert dan.time_zone == "Asia/Almaty"
    assert dan.properties == {"Seats": 5, "VIP": True}
    assert result.errors == [{"line": 3, "column": "TZ", "reason": mock.ANY}]


def test_semicolon_cp1251_csv_from_russian_excel(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    content = _csv(
        [["Почта", "Имя", "Город"], ["ivan@example.com", "Иван", "Алматы"]],
        delimiter=";",
        encoding="cp1251",
    )
    result = _run(company, "люди.csv", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    ivan = _contacts(company)["ivan@example.com"]
    assert ivan.name == "Иван"
    assert ivan.properties == {"Город": "Алматы"}


def test_explicit_mapping_and_ignored_columns(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    content = _csv([["Col A", "Col B", "Col C"], ["x@example.com", "Xavier", "secret"]])
    result = _run(
        company,
        "m.csv",
        content,
        django_capture_on_commit_callbacks,
        mapping={"Col A": "email", "Col B": "name", "Col C": "ignore"},
    )
    assert result.status == ImportStatus.DONE
    contact = _contacts(company)["x@example.com"]
    assert contact.name == "Xavier"
    assert contact.properties == {}


def test_mapping_suggestions_and_validation() -> None:
    headers = ["E-mail", "Phone Number", "Full name", "tz", "Customer ID", "Plan", "error"]
    assert suggest_mapping(headers) == {
        "E-mail": "email",
        "Phone Number": "phone",
        "Full name": "name",
        "tz": "time_zone",
        "Customer ID": "external_id",
        "Plan": "property:Plan",
        "error": "ignore",  # the error report's own column, when a fixed report comes back
    }
    with pytest.raises(ValidationError, match="both go to email"):
        validate_mapping(["a", "b"], {"a": "email", "b": "email"})
    with pytest.raises(ValidationError, match="unknown target"):
        validate_mapping(["a"], {"a": "birthday"})
    with pytest.raises(ValidationError, match="No column"):
        validate_mapping(["a"], {"zzz": "email"})
    with pytest.raises(ValidationError, match="at least one column"):
        validate_mapping(["Plan"], {})


def test_reimport_updates_instead_of_duplicating_and_later_duplicate_row_wins(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    first = [
        ["external_id", "email", "name", "plan"],
        ["c1", "one@example.com", "One", "free"],
        ["", "two@example.com", "Two", "free"],
        ["", "TWO@example.com", "Two again", "pro"],  # same person later in the file
    ]
    result = _run(company, "a.csv", _csv(first), django_capture_on_commit_callbacks)
    assert (result.created_count, result.updated_count) == (2, 1)
    assert _contacts(company)["two@example.com"].name == "Two again"
    second = [
        ["external_id", "email", "name", "city"],
        ["c1", "one.new@example.com", "", "Astana"],  # matched by external id, email changes
        ["", "two@example.com", "Two", ""],
    ]
    result = _run(company, "b.csv", _csv(second), django_capture_on_commit_callbacks)
    assert (result.created_count, result.updated_count, result.invalid_count) == (0, 2, 0)
    contacts = _contacts(company)
    assert set(contacts) == {"one.new@example.com", "two@example.com"}
    one = contacts["one.new@example.com"]
    assert one.name == "One"  # a blank cell leaves the field as it was
    assert one.properties == {"plan": "free", "city": "Astana"}


def test_conflicting_external_id_for_an_email_is_a_bad_row(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    Contact.objects.create(company=company, email="k@example.com", external_id="k-1")
    rows = [["external_id", "email"], ["k-2", "k@example.com"]]
    result = _run(company, "c.csv", _csv(rows), django_capture_on_commit_callbacks)
    assert result.invalid_count == 1
    assert result.errors[0]["column"] == "external_id"
    assert Contact.objects.for_company(company).count() == 1


def test_unreadable_files_are_refused_at_upload(company: Company) -> None:
    """What is told without reading the file; the rest is the worker's (test_import_limits)."""
    for name, content in [
        ("x.pdf", b"%PDF"),
        ("x.xlsx", b"not a zip"),
        ("x.csv", b""),
    ]:
        with pytest.raises(ValidationError) as info:
            contact_import_create(company=company, upload=SimpleUploadedFile(name, content))
        assert "file" in info.value.message_dict
    assert ContactImport.objects.for_company(company).count() == 0


def _rows(count: int, start: int = 0) -> Iterator[list[str]]:
    for i in range(start, start + count):
        yield [f"user{i}@example.com", f"User {i}", "pro" if i % 2 else "free"]


HEADERS = ["email", "name", "plan"]
MAPPING = {"email": "email", "name": "name", "plan": "property:plan"}


def _import(
    company: Company, rows: Any, chunk_size: int = 1000, copy: bool | None = None
) -> imports.ImportCounts:
    return import_rows(
        company=company,
        headers=HEADERS,
        mapping=MAPPING,
        rows=rows,
        report=_ErrorReport(HEADERS),
        chunk_size=chunk_size,
        copy=copy,
    )


def _queries(company: Company, count: int, start: int = 0, copy: bool = False) -> int:
    with CaptureQueriesContext(connection) as captured:
        _import(company, _rows(count, start), copy=copy)
    return len(captured)


# Both ways of writing a chunk: the ORM (any database) and COPY (PostgreSQL only).
WRITERS = [
    pytest.param(False, id="orm"),
    pytest.param(
        True,
        id="copy",
        marks=pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL"),
    ),
]


@pytest.mark.parametrize("copy", WRITERS)
def test_queries_grow_only_with_the_number_of_chunks(company: Company, copy: bool) -> None:
    """Per chunk: savepoint, one SELECT, writes, release (COPY itself is not logged by
    Django: one more round trip per chunk on that path)."""
    small = _queries(company, 1000, copy=copy)
    large = _queries(company, 3000, start=1000, copy=copy)
    per_chunk = small  # one chunk
    assert per_chunk <= 6
    assert large == 3 * per_chunk
    # Updating (all rows exist now) costs the same per chunk as creating.
    assert _queries(company, 3000, start=1000, copy=copy) <= 3 * per_chunk + 3
    assert Contact.objects.for_company(company).count() == 4000


@pytest.mark.parametrize("copy", WRITERS)
def test_a_failing_chunk_leaves_no_half_written_rows(company: Company, copy: bool) -> None:
    Contact.objects.create(company=company, email="user1500@example.com", name="Before")
    calls = {"n": 0}
    writer_name = "_write_copy" if copy else "_write_orm"
    write = getattr(imports, writer_name)

    def write_then_fail(**kwargs: Any) -> None:
        write(**kwargs)  # every statement of the chunk ran...
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk full")  # ...and then the chunk fails

    with (
        mock.patch.object(imports, writer_name, write_then_fail),
        pytest.raises(DatabaseError),
    ):
        # Chunk 1 (rows 0-999) only creates; chunk 2 updates user1500 and inserts 999 new
        # rows, then fails.
        _import(company, _rows(3000), copy=copy)
    assert calls["n"] == 2  # not retried: only unique-key races are
    emails = set(Contact.objects.for_company(company).values_list("email", flat=True))
    assert "user999@example.com" in emails  # chunk 1 committed
    assert "user1000@example.com" not in emails  # chunk 2's inserts rolled back with it
    assert "user2000@example.com" not in emails  # never reached
    assert Contact.objects.for_company(company).get(email="user1500@example.com").name == "Before"


def test_a_failing_chunk_marks_the_import_failed(
    company: Company, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(imports, "CHUNK_SIZE", 1000)
    monkeypatch.setattr(imports, "COPY_CHUNK_SIZE", 1000)
    content = _csv([HEADERS, *_rows(2500)])
    with mock.patch.object(
        imports, "_write_chunk", side_effect=[(1000, 0, []), DatabaseError("boom")]
    ):
        result = _run(company, "f.csv", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.FAILED
    assert "boom" in result.failure
    assert result.created_count == 1000  # what the committed chunk wrote
    assert result.finished_at is not None


def test_the_file_is_consumed_lazily_one_chunk_at_a_time(company: Company) -> None:
    """50k rows from a generator: the importer never pulls more than a chunk ahead."""
    pulled = {"n": 0}
    written_when_pulled: list[int] = []

    def rows() -> Iterator[list[str]]:
        for row in _rows(50_000):
            pulled["n"] += 1
            if pulled["n"] % 10_000 == 0:
                written_when_pulled.append(Contact.objects.for_company(company).count())
            yield row

    counts = _import(company, rows())
    assert counts.created == 50_000
    # When row 10,000k was pulled, every chunk before it was already written.
    assert written_when_pulled == [9_000, 19_000, 29_000, 39_000, 49_000]


def test_csv_reader_streams_from_the_file_object(company: Company) -> None:
    """The CSV reader reads the stored file in pieces, not all at once."""
    content = _csv([HEADERS, *_rows(20_000)])
    binary = io.BytesIO(content)
    rows = imports.iter_file_rows(binary, "csv")
    assert next(rows) == HEADERS
    assert next(rows) == ["user0@example.com", "User 0", "free"]
    # Only the sniffing sample and the wrapper's first block have been read.
    assert binary.tell() < len(content) / 4


EQUIVALENCE_HEADERS = ["external_id", "email", "phone", "name", "language", "tz", "plan", "note"]
EQUIVALENCE_MAPPING = {
    "external_id": "external_id",
    "email": "email",
    "phone": "phone",
    "name": "name",
    "language": "language",
    "tz": "time_zone",
    "plan": "property:plan",
    "note": "property:note",
}
EQUIVALENCE_ROWS = [
    # Existing k-1 (old@…): matched by external id, gives up its email…
    ["k-1", "new@example.com", "", "Kay", "", "", "pro", ""],
    # …which a new contact of the same chunk takes (updates are written before inserts).
    ["", "OLD@example.com", "", "Old Owner", "en", "", "", ""],
    # Existing by email (no external id): gets one; properties merge with what it has.
    ["z-9", "zed@example.com", "", "", "kk", "Asia/Almaty", "", "note\twith tab"],
    # Conflict: this email belongs to k-2.
    ["k-3", "kim@example.com", "", "Kim", "", "", "", ""],
    # Phone-only contacts are always new (phones are not keys).
    ["", "", "+7 701 123 4567", "Phone Only", "ru", "", "", ""],
    ["", "", "+7 701 123 4567", "Phone Twin", "", "", "", ""],
    # Text COPY must carry as is: quotes, backslashes, newlines, the NULL marker, Unicode.
    ["q-1", "q@example.com", "", 'Quote " \\ back\\slash', "", "", "\\N", 'a "b"\nc,d'],
    ["q-2", "", "+7 701 765 4321", "\\N", "", "UTC", "", "Ünïcödé Привет"],
    # Duplicates: the later row wins and blank cells keep what the earlier one wrote.
    ["d-1", "dup@example.com", "", "First", "en", "", "free", "one"],
    ["d-1", "", "", "Second", "", "", "pro", ""],
    ["", "DUP@example.com", "", "", "ru", "", "", "three"],
    # Bad rows (reported, not written).
    ["", "not-an-email", "", "Bad", "", "", "", ""],
    ["", "", "", "Nobody", "", "", "", ""],
    ["x-1", "x@example.com", "", "", "xx", "Mars/Base", "", ""],
    # Matched by external id and by email to the same existing contact.
    ["k-2", "kim@example.com", "", "Kim Two", "", "", "vip", ""],
    # A valid address (up to 320 characters) too long for the column: a bad row, not a crash.
    ["", "a" * 250 + "@example.com", "", "Long", "", "", "", ""],
]


def _seed(company: Company) -> None:
    contacts = Contact.objects.for_company(company)
    contacts.create(company=company, email="old@example.com", external_id="k-1", name="K")
    contacts.create(company=company, email="kim@example.com", external_id="k-2")
    contacts.create(
        company=company, email="zed@example.com", properties={"plan": "free", "seats": 3}
    )


def _import_equivalence_rows(
    company: Company, report: _ErrorReport, *, chunk_size: int, copy: bool
) -> imports.ImportCounts:
    return import_rows(
        company=company,
        headers=EQUIVALENCE_HEADERS,
        mapping=EQUIVALENCE_MAPPING,
        rows=iter(EQUIVALENCE_ROWS),
        report=report,
        chunk_size=chunk_size,
        copy=copy,
    )


def _snapshot(company: Company) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (c.email, c.phone, c.name, c.language, c.time_zone, c.external_id, c.properties)
            for c in Contact.objects.for_company(company)
        ),
        key=repr,
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.parametrize("chunk_size", [1, 4, 1000])
def test_copy_and_orm_paths_write_the_same_contacts(
    company: Company, other_company: Company, chunk_size: int
) -> None:
    """The same file through both writers, into two companies seeded alike."""
    assert imports.copy_available()  # the default on PostgreSQL
    results = []
    for target, copy in ((company, False), (other_company, True)):
        _seed(target)
        report = _ErrorReport(EQUIVALENCE_HEADERS)
        with mock.patch.object(
            imports, "_write_orm" if copy else "_write_copy", side_effect=AssertionError
        ):
            counts = _import_equivalence_rows(target, report, chunk_size=chunk_size, copy=copy)
        results.append((counts, report.kept, _snapshot(target)))
    assert results[0] == results[1]
    counts, errors, contacts = results[1]
    assert (counts.created, counts.updated, counts.invalid) == (6, 5, 5)
    assert {(e["line"], e["column"]) for e in errors} == {
        (5, "external_id"),
        (13, "email"),
        (14, "email"),
        (15, "language"),
        (15, "tz"),
        (17, "email"),
    }
    by_email = {c[0]: c for c in contacts}
    assert by_email["new@example.com"][5] == "k-1"
    assert by_email["old@example.com"][2] == "Old Owner"
    assert by_email["zed@example.com"][5:] == (
        "z-9",
        {"plan": "free", "seats": 3, "note": "note\twith tab"},
    )
    assert by_email["q@example.com"][2] == 'Quote " \\ back\\slash'
    assert by_email["q@example.com"][6] == {"plan": "\\N", "note": 'a "b"\nc,d'}
    assert by_email["dup@example.com"][2:4] == ("Second", "ru")
    assert by_email["dup@example.com"][6] == {"plan": "pro", "note": "three"}
    assert by_email["kim@example.com"][2] == "Kim Two"
    q2 = next(c for c in contacts if c[5] == "q-2")
    assert (q2[0], q2[2], q2[4], q2[6]) == (None, "\\N", "UTC", {"note": "Ünïcödé Привет"})
    assert sum(1 for c in contacts if c[1] == "+77011234567") == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("chunk_size", [1, 4])
def test_a_worker_import_writes_on_a_second_thread_with_the_same_result(
    company: Company, other_company: Company, chunk_size: int
) -> None:
    """Outside a transaction (a worker) chunks are written on a writer thread while the next
    is parsed; contacts, counts and the report (in line order) equal the one-thread run."""
    write_chunk = imports._write_chunk
    threads: set[int] = set()

    def spy(**kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return write_chunk(**kwargs)

    results = []
    for target, overlap in ((company, False), (other_company, True)):
        _seed(target)
        report = _ErrorReport(EQUIVALENCE_HEADERS)
        threads.clear()
        # A test's transaction around the call turns the writer thread off.
        around = contextlib.nullcontext() if overlap else transaction.atomic()
        with mock.patch.object(imports, "_write_chunk", spy), around:
            assert connection.in_atomic_block is not overlap
            counts = _import_equivalence_rows(target, report, chunk_size=chunk_size, copy=True)
        if overlap:
            assert threads
            assert threading.get_ident() not in threads
        else:
            assert threads == {threading.get_ident()}
        results.append((counts, report.kept, _snapshot(target)))
    assert results[0] == results[1]
    lines = [error["line"] for error in results[1][1]]
    assert lines == sorted(lines)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_failing_chunk_on_the_writer_thread_stops_the_import(company: Company) -> None:
    write = imports._write_copy
    calls = {"n": 0}

    def write_then_fail(**kwargs: Any) -> None:
        write(**kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk full")

    with (
        mock.patch.object(imports, "_write_copy", write_then_fail),
        pytest.raises(DatabaseError),
    ):
        _import(company, _rows(5000), copy=True)
    assert calls["n"] == 2  # the third chunk was never written
    emails = set(Contact.objects.for_company(company).values_list("email", flat=True))
    assert len(emails) == 1000
    assert "user999@example.com" in emails
    assert "user1000@example.com" not in emails


def test_an_import_whose_message_was_lost_is_woken_again(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    """Started (running) but its message never reached a worker: the stale sweep wakes it
    after a while, and it runs once."""
    from datetime import timedelta

    from django.utils import timezone

    from surveys.services.dispatch import REWAKE_QUEUED_AFTER, invitations_sweep_stale

    upload = SimpleUploadedFile("people.csv", _csv([["email"], ["ann@example.com"]]))
    contact_import = contact_import_create(company=company, upload=upload)  # message "lost"
    contact_import_start(company=company, contact_import=contact_import)  # this one too
    contact_import.refresh_from_db()
    # Not read yet, to be imported once read.
    assert (contact_import.status, contact_import.started_at) == (ImportStatus.READING, None)
    assert contact_import.auto_start
    assert invitations_sweep_stale().imports == 0  # not stale yet
    later = timezone.now() + REWAKE_QUEUED_AFTER + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert invitations_sweep_stale(now=later).imports == 1
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.DONE
    assert set(_contacts(company)) == {"ann@example.com"}
    assert invitations_sweep_stale(now=later + REWAKE_QUEUED_AFTER * 2).imports == 0


def test_public_ids_in_bulk_sort_in_the_order_they_are_made() -> None:
    """New contacts' public ids are drawn for a whole chunk at once: URL-safe, all
    different, 90 random bits each, and in the order they were made (so a chunk's ids are
    appended to the unique index, not spread over it), across calls too, within one
    millisecond or not."""
    from companies.models import new_ordered_public_id, new_ordered_public_ids

    first = new_ordered_public_ids(1000)
    later = new_ordered_public_ids(3)
    time.sleep(0.002)
    ids = [*first, *later, new_ordered_public_id()]
    assert len(set(ids)) == len(ids) == 1004
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert all(len(i) == 32 and set(i) <= alphabet for i in ids)
    assert ids == sorted(ids)
    # One in 64 random ids would start with "-", which a command line reads as an option.
    assert not [i for i in ids if i.startswith("-")]
    # The random part differs between ids made in the same millisecond.
    assert len({i[17:] for i in first}) == 1000
    assert new_ordered_public_ids(0) == []


@pytest.mark.parametrize(
    ("values", "literal"),
    [
        ([], "{}"),
        ([""], '{""}'),
        (["a@x.kz", "ext-1"], '{"a@x.kz","ext-1"}'),
        (['say "hi"', "back\\slash"], '{"say \\"hi\\"","back\\\\slash"}'),
    ],
)
def test_array_literal_quotes_only_what_needs_it(values: list[str], literal: str) -> None:
    assert imports._array_literal(values) == literal


def _plans_by_thread(calls: list[tuple[int, str]]) -> dict[str, set[int]]:
    """First email of each planned chunk → the threads it was matched on."""
    threads: dict[str, set[int]] = {}
    for ident, first in calls:
        threads.setdefault(first, set()).add(ident)
    return threads


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_chunk_matched_while_the_one_before_is_written_is_matched_again_if_it_names_its_people(
    company: Company,
) -> None:
    """A worker's import matches chunk n+1 while chunk n is being written. Chunk 2 here
    names a contact chunk 1 changes: matched before chunk 1 committed, it would write back
    what the contact was (name, properties); it is matched again after. Chunk 3 names no one
    of chunk 2 and keeps the match made on the parsing thread."""
    from tests.waits import WAIT_SECONDS

    Contact.objects.create(
        company=company, email="x@example.com", name="X", properties={"seats": 3}
    )
    planned: list[tuple[int, str]] = []
    plan_chunk, plan_ahead, write_chunk = (
        imports._plan_chunk,
        imports._plan_ahead,
        imports._write_chunk,
    )
    second_matched = threading.Event()

    def spy_plan(**kwargs: Any) -> Any:
        planned.append((threading.get_ident(), kwargs["rows"][0].fields["email"]))
        return plan_chunk(**kwargs)

    def spy_ahead(company: Company, copy: bool, rows: Any, existing: Any, **kwargs: Any) -> Any:
        plan = plan_ahead(company, copy, rows, existing, **kwargs)
        if rows[0].fields["email"] == "b@example.com":
            second_matched.set()
        return plan

    def slow_write(**kwargs: Any) -> Any:
        if kwargs["rows"][0].fields["email"] == "x@example.com":
            # Chunk 1 commits only once chunk 2 has been matched: no luck of timing.
            assert second_matched.wait(WAIT_SECONDS)
        return write_chunk(**kwargs)

    rows = [
        ["x@example.com", "X one", "pro"],
        ["a@example.com", "A", ""],
        ["b@example.com", "B", ""],
        ["x@example.com", "", ""],  # blank cells: keep what chunk 1 wrote
        ["c@example.com", "C", "free"],
        ["d@example.com", "D", ""],
    ]
    with (
        mock.patch.object(imports, "_plan_chunk", spy_plan),
        mock.patch.object(imports, "_plan_ahead", spy_ahead),
        mock.patch.object(imports, "_write_chunk", slow_write),
    ):
        counts = _import(company, iter(rows), chunk_size=2, copy=True)
    assert (counts.created, counts.updated, counts.invalid) == (4, 2, 0)
    x = Contact.objects.for_company(company).get(email="x@example.com")
    assert (x.name, x.properties) == ("X one", {"seats": 3, "plan": "pro"})
    threads = _plans_by_thread(planned)
    main = threading.get_ident()
    assert threads["x@example.com"] == {main}
    assert main in threads["b@example.com"]  # matched ahead, then again on the writer thread
    assert len(threads["b@example.com"]) == 2
    assert threads["c@example.com"] == {main}  # matched ahead, kept
    assert Contact.objects.for_company(company).count() == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_contact_another_transaction_creates_after_its_chunk_was_matched_is_updated(
    company: Company,
) -> None:
    """Between the match made ahead and the chunk's write, another transaction commits a
    contact with an email of the chunk: the chunk's insert meets the unique key, rolls
    back whole and is matched again in its transaction: that contact is updated, not
    duplicated, and no row is lost."""
    plan_ahead = imports._plan_ahead

    def create_elsewhere() -> None:
        Contact.objects.create(company=company, email="user1500@example.com", name="Elsewhere")
        connection.close()  # this thread's own connection

    def spy_ahead(company: Company, copy: bool, rows: Any, existing: Any, **kwargs: Any) -> Any:
        plan = plan_ahead(company, copy, rows, existing, **kwargs)
        if any(row.fields["email"] == "user1500@example.com" for row in rows):
            other = threading.Thread(target=create_elsewhere)
            other.start()
            other.join()
        return plan

    with mock.patch.object(imports, "_plan_ahead", spy_ahead):
        counts = _import(company, _rows(3000), chunk_size=1000, copy=True)
    assert (counts.created, counts.updated, counts.invalid) == (2999, 1, 0)
    contacts = Contact.objects.for_company(company)
    assert contacts.count() == 3000
    assert contacts.get(email="user1500@example.com").name == "User 1500"


def _counting_lookups() -> tuple[list[str], Any]:
    """A spy on the look-up thread's lookups: the first email of each chunk looked up."""
    looked_up: list[str] = []
    look_up = imports._look_up_ahead

    def spy(company: Company, copy: bool, rows: Any) -> Any:
        looked_up.append(rows[0].fields["email"])
        return look_up(company, copy, rows)

    return looked_up, mock.patch.object(imports, "_look_up_ahead", spy)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_first_import_stops_looking_up_once_its_rows_name_nobody_who_exists(
    company: Company,
) -> None:
    """A company's first import of new people looks up the contacts of its first chunks
    only: once a written chunk named nobody who existed, the next ones are taken for new
    people and their inserts checked by the unique keys (no lookup per chunk)."""
    looked_up, spying = _counting_lookups()
    with spying:
        counts = _import(company, _rows(6000), chunk_size=1000, copy=True)
    assert (counts.created, counts.updated, counts.invalid) == (6000, 0, 0)
    assert Contact.objects.for_company(company).count() == 6000
    # Chunk 1, and chunk 2 (looked up while chunk 1 was being written): not the other four.
    assert looked_up == ["user0@example.com", "user1000@example.com"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_chunk_taken_for_new_people_that_names_earlier_ones_updates_them(
    company: Company,
) -> None:
    """Chunks 4 and 5 name the people of chunks 1 and 2 again (not of the chunk just
    before, which the plan check would catch): chunk 4, taken for new people, meets the
    unique email key, rolls back whole and is matched again with a lookup (chunk 5 too);
    those people are updated, none duplicated or lost, and the chunks after are looked up
    again."""
    renamed = [[f"user{i}@example.com", f"Renamed {i}", ""] for i in range(2000)]
    rows = [*_rows(3000), *renamed, *_rows(1000, start=3000)]
    looked_up, spying = _counting_lookups()
    with spying:
        counts = _import(company, iter(rows), chunk_size=1000, copy=True)
    assert (counts.created, counts.updated, counts.invalid) == (4000, 2000, 0)
    contacts = Contact.objects.for_company(company)
    assert contacts.count() == 4000
    assert contacts.get(email="user7@example.com").name == "Renamed 7"
    assert contacts.get(email="user1999@example.com").name == "Renamed 1999"
    assert contacts.get(email="user2000@example.com").name == "User 2000"
    assert contacts.get(email="user3999@example.com").name == "User 3999"
    # Chunks 1 and 2 (2 while 1 was written); 3, 4 and 5 taken for new people (5 decided
    # before 4 was written: 4 and 5 each rolled back and matched again in their own
    # transaction); lookups again from chunk 6, after 4's conflict.
    assert looked_up == ["user0@example.com", "user1000@example.com", "user3000@example.com"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_worker_import_reports_the_same_progress_per_chunk_as_one_thread(
    company: Company, other_company: Company
) -> None:
    """The progress a chunk commits (rows read, created, updated, invalid) counts the rows
    up to that chunk, though the pipeline has parsed the next one already."""
    results = []
    for target, overlap in ((company, False), (other_company, True)):
        _seed(target)
        progress: list[tuple[int, int, int, int]] = []

        def on_chunk(
            before: imports.ImportCounts, created: int, updated: int, invalid: int
        ) -> None:
            progress.append(  # noqa: B023 (called before the loop moves on)
                (
                    before.rows,
                    before.created + created,
                    before.updated + updated,
                    before.invalid + invalid,
                )
            )

        around = contextlib.nullcontext() if overlap else transaction.atomic()
        with around:
            import_rows(
                company=target,
                headers=EQUIVALENCE_HEADERS,
                mapping=EQUIVALENCE_MAPPING,
                rows=iter(EQUIVALENCE_ROWS),
                report=_ErrorReport(EQUIVALENCE_HEADERS),
                chunk_size=3,
                copy=True,
                on_chunk=on_chunk,
            )
        results.append(progress)
    assert results[0] == results[1]
    assert len(results[1]) == 5  # 13 rows valid when parsed, 3 a chunk
    assert results[1][-1] == (16, 6, 5, 5)


@pytest.mark.parametrize(
    "address",
    [
        "person@example.com",
        "first.last+tag@example.com",
        "o'brien@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        '"quoted person"@example.com',
        "ſam@example.com",  # a long s: Django's case-blind check lets it in
        "kelvin\u212a@example.com",
        "имя@example.com",
        "a b@example.com",
        "@example.com",
        "person@",
        "person@localhost",
        "person@[127.0.0.1]",
        "x" * 310 + "@example.com",
    ],
)
def test_the_import_accepts_an_address_exactly_when_django_does(address: str) -> None:
    """The import's email check takes a shortcut for plain addresses at a domain it has
    accepted before; it accepts the same addresses as Django's validator, first time and
    after (the domain then known)."""
    from django.core.validators import EmailValidator

    def accepts(validator: Any, value: str) -> bool:
        try:
            validator(value)
        except ValidationError:
            return False
        return True

    ours = imports._EmailValidator()
    assert accepts(ours, "known@example.com")
    expected = accepts(EmailValidator(), address)
    assert accepts(ours, address) is expected
    assert accepts(ours, address) is expected


def test_overlapping_imports_give_the_switch_interval_back_when_the_last_ends() -> None:
    """The interpreter's switch interval is the process's: the first of two overlapping
    imports shortens it, and it comes back only when the last one ends (not left short by
    the order they end in)."""
    before = sys.getswitchinterval()
    first, second = imports._short_switch_interval(), imports._short_switch_interval()
    first.__enter__()
    second.__enter__()
    assert sys.getswitchinterval() == pytest.approx(imports.PIPELINE_SWITCH_INTERVAL)
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(imports.PIPELINE_SWITCH_INTERVAL)
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(before)


@pytest.mark.django_db
def test_the_collector_makes_no_full_pass_while_an_import_runs(company: Company) -> None:
    """Full passes of the garbage collector walked the chunks an import holds again and
    again (a quarter of its parsing time at a million rows): while an import runs only the
    young generations are collected, and the thresholds come back when it ends. A row
    that fails a check (its ValidationError is a cycle) is still freed while it runs."""
    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []
    full_passes: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            full_passes.append(1)

    def on_chunk(*_args: Any) -> None:
        during.append(gc.get_threshold())

    rows = [[f"p{i}@example.com" if i % 2 else "not an email", f"P {i}"] for i in range(3000)]
    gc.callbacks.append(note)
    try:
        counts = import_rows(
            company=company,
            headers=["email", "name"],
            mapping={"email": "email", "name": "name"},
            rows=iter(rows),
            report=_ErrorReport(["email", "name"]),
            chunk_size=500,
            on_chunk=on_chunk,
        )
    finally:
        gc.callbacks.remove(note)
    assert (counts.created, counts.invalid) == (1500, 1500)
    assert during
    assert {threshold[:2] for threshold in during} == {before[:2]}
    assert {threshold[2] for threshold in during} == {imports._NEVER}
    assert full_passes == []
    assert gc.get_threshold() == before


def test_overlapping_imports_give_the_collector_thresholds_back_when_the_last_ends() -> None:
    before = gc.get_threshold()
    first, second = imports._young_collections_only(), imports._young_collections_only()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[2] == imports._NEVER
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
