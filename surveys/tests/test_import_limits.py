"""Hostile and broken import files (issue 13): the web request only stores the file, the
worker reads it within limits, and every refusal is a file- or row-level message, never a
stalled worker, a memory spike or a 500. The error report escapes formulas."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
import zipfile
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from openpyxl import Workbook
from openpyxl.reader.excel import ExcelReader

from companies.models import Company, Role
from companies.spreadsheets import spreadsheet_row, spreadsheet_safe, spreadsheet_unescape
from conftest import KeyPersona, Persona
from surveys import imports
from surveys.imports import contact_import_create
from surveys.models import Contact, ContactImport, ImportStatus

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("https://evil.example")'


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rezip(content: bytes, replace: dict[str, Any]) -> bytes:
    """The workbook with some parts replaced (bytes, or a callable writing to the part)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if info.filename not in replace:
                target.writestr(info, source.read(info))
        for name, part in replace.items():
            if callable(part):
                with target.open(name, "w") as stream:
                    part(stream)
            else:
                target.writestr(name, part)
    return out.getvalue()


def _api(persona: KeyPersona) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {persona.key}")


def _import(
    company: Company, name: str, content: bytes, capture: Any, mapping: Any = None
) -> ContactImport:
    with capture(execute=True):
        contact_import = contact_import_create(
            company=company, upload=SimpleUploadedFile(name, content), mapping=mapping, start=True
        )
    contact_import.refresh_from_db()
    return contact_import


# --- Nothing is parsed in the request ---------------------------------------------------------


def test_the_api_only_stores_the_file_and_the_worker_refuses_a_wide_header(
    api_owner: KeyPersona, company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    """A 40,000-column header took 11.6 s in the request (a quadratic check): now the
    request reads none of it, and the worker refuses it by its width."""
    header = ",".join(f"column {n}" for n in range(40_000)).encode()
    content = b"email," + header + b"\nann@example.com\n"
    with mock.patch.object(imports, "iter_file_rows", wraps=imports.iter_file_rows) as reads:
        with django_capture_on_commit_callbacks() as woken:
            response = _api(api_owner).post(
                "/api/v1/contact-imports/", {"file": SimpleUploadedFile("wide.csv", content)}
            )
        assert response.status_code == 202
        assert reads.call_count == 0  # the request stored the file, nothing more
        body = response.json()
        assert (body["status"], body["headers"]) == ("reading", [])
        for callback in woken:  # the worker
            callback()
        assert reads.call_count == 1
    body = _api(api_owner).get(f"/api/v1/contact-imports/{body['id']}/").json()
    assert body["status"] == "failed"
    assert "more than 500 columns" in body["failure"]
    assert Contact.objects.for_company(company).count() == 0


def test_the_web_upload_waits_on_the_import_page_then_shows_the_mapping(
    personas: dict[str, Persona], company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    client = personas[Role.MANAGER].client
    content = _csv([["Mail", "Plan"], ["ok@example.com", "pro"]])
    with django_capture_on_commit_callbacks() as woken:
        response = client.post(
            reverse("contacts:import", kwargs={"company_slug": company.slug}),
            {"file": SimpleUploadedFile("l.csv", content)},
        )
    contact_import = ContactImport.objects.for_company(company).get()
    assert contact_import.status == ImportStatus.READING
    detail = response["Location"]
    page = client.get(detail).content.decode()
    assert 'data-testid="import-reading"' in page
    assert 'hx-trigger="every 2s"' in page  # polls until the file is read
    for callback in woken:
        callback()
    contact_import.refresh_from_db()
    assert contact_import.status == ImportStatus.PENDING
    assert contact_import.headers == ["Mail", "Plan"]
    assert contact_import.samples == {"Mail": ["ok@example.com"], "Plan": ["pro"]}
    mapping_url = reverse(
        "contacts:import_mapping",
        kwargs={"company_slug": company.slug, "import_id": contact_import.public_id},
    )
    # The page's next poll loads the mapping screen; a plain visit is sent there too.
    polled = client.get(detail, headers={"HX-Request": "true"})
    assert polled["HX-Redirect"] == mapping_url
    assert client.get(detail)["Location"] == mapping_url
    assert '<code class="sample">ok@example.com</code>' in client.get(mapping_url).content.decode()


def test_a_mapping_given_before_the_file_is_read_is_checked_against_its_header(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    content = _csv([["email", "Plan"], ["ok@example.com", "pro"]])
    result = _import(
        company, "c.csv", content, django_capture_on_commit_callbacks, {"Tier": "property:tier"}
    )
    assert result.status == ImportStatus.FAILED
    assert "No column named “Tier”" in result.failure
    result = _import(
        company, "c.csv", content, django_capture_on_commit_callbacks, {"Plan": "property:tier"}
    )
    assert result.status == ImportStatus.DONE
    assert Contact.objects.for_company(company).get().properties == {"tier": "pro"}


# --- Limits -----------------------------------------------------------------------------------


def test_a_duplicate_column_fails_the_import_in_the_worker(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    content = b"email,email\na@b.c,d@e.f\n"
    result = _import(company, "x.csv", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.FAILED
    assert "appears twice" in result.failure


def test_an_endless_line_is_refused_after_reading_the_limit(
    company: Company, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "MAX_LINE_LENGTH", 1000)
    long_line = b"ann@example.com," + b"x" * 5000 + b"\n"
    content = b"email,note\nbob@example.com,fine\n" + long_line
    result = _import(company, "x.csv", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.FAILED
    assert result.failure == "Line 3 is longer than 1000 characters."
    # A header of a million empty cells: one line too long, not a million columns parsed.
    content = b"email" + b"," * 2000 + b"\nann@example.com\n"
    result = _import(company, "y.csv", content, django_capture_on_commit_callbacks)
    assert result.failure == "Line 1 is longer than 1000 characters."


def test_a_header_far_below_the_first_row_is_refused(
    company: Company, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workbook's first row can say it is row 10⁹: the rows before it are not all read."""
    monkeypatch.setattr(imports, "MAX_LINES_BEFORE_HEADER", 50)
    workbook = Workbook()
    workbook.active.cell(row=80, column=1, value="email")
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = _import(company, "low.xlsx", buffer.getvalue(), django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.FAILED
    assert result.failure == "The first 50 rows are empty: the first row must name the columns."


def test_a_workbook_claiming_16384_columns_is_read_no_wider_than_the_limit(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    content = _xlsx([["email", "plan"], ["ann@example.com", "pro"], ["bob@example.com", "free"]])
    with zipfile.ZipFile(io.BytesIO(content)) as source:
        sheet = source.read("xl/worksheets/sheet1.xml")
    # openpyxl writes `<dimension ref="A1:B3" />`, or `…"A1:B3"/>` when lxml is installed
    # (python3-saml brings it).
    sheet, claimed = re.subn(rb'<dimension ref="A1:B3"\s*/>', b'<dimension ref="A1:XFD3"/>', sheet)
    assert claimed == 1, sheet[:300]
    content = _rezip(content, {"xl/worksheets/sheet1.xml": sheet})
    widths: list[int] = []
    reader = imports._xlsx_reader

    def spy(binary: Any) -> Any:
        for row in reader(binary):
            widths.append(len(row))
            yield row

    with mock.patch.object(imports, "_xlsx_reader", spy):
        result = _import(company, "wide.xlsx", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert result.created_count == 2
    assert max(widths) == imports.MAX_COLUMNS + 1


def test_rows_past_the_limit_are_not_imported_and_the_import_says_so(
    company: Company, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    rows = [["email"], *([f"p{n}@example.com"] for n in range(5))]
    result = _import(company, "x.csv", _csv(rows), django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.FAILED
    assert result.created_count == 3
    assert "more than 3 rows: lines 2 to 4 were imported" in result.failure
    emails = set(Contact.objects.for_company(company).values_list("email", flat=True))
    assert emails == {"p0@example.com", "p1@example.com", "p2@example.com"}


def test_an_overlong_cell_is_a_row_error(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    rows = [
        ["email", "properties"],
        ["ann@example.com", "note=" + "x" * 40_000],
        ["bob@example.com", "plan=pro"],
    ]
    result = _import(company, "x.csv", _csv(rows), django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert (result.created_count, result.invalid_count) == (1, 1)
    assert result.errors == [
        {"line": 2, "column": "properties", "reason": "At most 32767 characters in a cell."}
    ]


def test_wide_data_rows_keep_only_the_header_columns(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    rows = [["email", "plan"], ["not-an-email", "pro", *(["x"] * 2000)]]
    result = _import(company, "x.csv", _csv(rows), django_capture_on_commit_callbacks)
    with result.error_report.open("rb") as report:
        lines = list(csv.reader(io.StringIO(report.read().decode("utf-8-sig"))))
    assert lines[1][:3] == ["not-an-email", "pro", "2"]
    assert len(lines[1]) == 4


# --- XLSX: zip bombs and broken workbooks -----------------------------------------------------


SST_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
    b'uniqueCount="1"><si><t>'
)


def _with_shared_strings(content: bytes, strings: Any) -> bytes:
    """The workbook with a sharedStrings.xml part that openpyxl reads (its content type
    declared), written by ``strings``."""
    with zipfile.ZipFile(io.BytesIO(content)) as source:
        types = source.read("[Content_Types].xml")
    override = (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" /></Types>'
    )
    types = types.replace(b"</Types>", override)
    return _rezip(content, {"[Content_Types].xml": types, "xl/sharedStrings.xml": strings})


def _bomb(stream: Any) -> None:
    """sharedStrings.xml of 100 MB of one string: packs to about 100 KB."""
    stream.write(SST_HEAD)
    block = b"a" * 2**20
    for _ in range(100):
        stream.write(block)
    stream.write(b"</t></si></sst>")


def test_an_xlsx_zip_bomb_is_refused_before_openpyxl_reads_it(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    content = _with_shared_strings(_xlsx([["email"], ["ann@example.com"]]), _bomb)
    assert len(content) < 300 * 1024
    with mock.patch.object(ExcelReader, "read", autospec=True) as openpyxl_read:
        tracemalloc.start()
        try:
            result = _import(company, "bomb.xlsx", content, django_capture_on_commit_callbacks)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.status == ImportStatus.FAILED
    assert "xl/sharedStrings.xml" in result.failure
    assert openpyxl_read.call_count == 0
    assert peak < 20 * 2**20  # nothing of the 100 MB unpacked


def _lie_about_size(content: bytes, name: str, size: int) -> bytes:
    """The zip with ``name``'s unpacked size in the central directory set to ``size``."""
    data = bytearray(content)
    position = data.find(b"PK\x01\x02")
    while position != -1:
        name_length = int.from_bytes(data[position + 28 : position + 30], "little")
        if data[position + 46 : position + 46 + name_length] == name.encode():
            data[position + 24 : position + 28] = size.to_bytes(4, "little")
            return bytes(data)
        position = data.find(b"PK\x01\x02", position + 4)
    raise AssertionError(f"{name} not in the zip")


def test_an_xlsx_whose_directory_lies_is_read_no_further_than_it_says(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    def strings(stream: Any) -> None:  # 5 MB; the directory will say 1,000 bytes
        stream.write(SST_HEAD + b"b" * 5 * 2**20 + b"</t></si></sst>")

    packed = _with_shared_strings(_xlsx([["email"], ["ann@example.com"]]), strings)
    content = _lie_about_size(packed, "xl/sharedStrings.xml", 1000)
    result = _import(company, "liar.xlsx", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.FAILED
    assert result.failure == "The file is not a valid .xlsx workbook."


def _truncated_sheet(content: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(content)) as source:
        sheet = source.read("xl/worksheets/sheet1.xml")
    return _rezip(content, {"xl/worksheets/sheet1.xml": sheet[: len(sheet) * 2 // 3]})


NO_SHEETS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b"<sheets/></workbook>"
)


def _not_a_workbook() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "a zip, not a workbook")
    return out.getvalue()


@pytest.mark.parametrize(
    ("case", "failure"),
    [
        ("truncated sheet", "The .xlsx workbook's first sheet cannot be read: it is damaged."),
        ("no sheets", "The .xlsx workbook has no sheet."),
        ("not a workbook", "The file is not a valid .xlsx workbook."),
    ],
)
def test_a_malformed_xlsx_fails_the_import_with_a_file_error_not_a_500(
    api_owner: KeyPersona,
    company: Company,
    django_capture_on_commit_callbacks: Any,
    case: str,
    failure: str,
) -> None:
    rows = [["email", "name"], *([f"p{n}@example.com", f"P {n}"] for n in range(300))]
    content = {
        "truncated sheet": lambda: _truncated_sheet(_xlsx(rows)),
        "no sheets": lambda: _rezip(_xlsx(rows), {"xl/workbook.xml": NO_SHEETS}),
        "not a workbook": _not_a_workbook,
    }[case]()
    client = _api(api_owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/contact-imports/", {"file": SimpleUploadedFile("broken.xlsx", content)}
        )
    assert response.status_code == 202
    body = client.get(f"/api/v1/contact-imports/{response.json()['id']}/").json()
    assert (body["status"], body["failure"]) == ("failed", failure)


def test_a_file_that_is_no_zip_at_all_is_a_400_in_the_request(
    api_owner: KeyPersona, company: Company
) -> None:
    response = _api(api_owner).post(
        "/api/v1/contact-imports/", {"file": SimpleUploadedFile("x.xlsx", b"not a zip")}
    )
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]
    assert ContactImport.objects.for_company(company).count() == 0


# --- Formulas in what the product writes ------------------------------------------------------


def test_the_error_report_escapes_formulas_and_takes_them_back_on_reimport(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    rows = [
        ["email", "phone", "note", "=cmd"],
        ["not-an-email", "+7 701 123 4567", EVIL, "@SUM(A1)"],
    ]
    result = _import(company, "x.csv", _csv(rows), django_capture_on_commit_callbacks)
    with result.error_report.open("rb") as report:
        lines = list(csv.reader(io.StringIO(report.read().decode("utf-8-sig"))))
    assert lines[0] == ["email", "phone", "note", "'=cmd", "error_line", "error"]
    assert lines[1][:4] == ["not-an-email", "'+7 701 123 4567", "'" + EVIL, "'@SUM(A1)"]
    # The report, fixed and imported again, gives what the file said.
    lines[1][0] = "ann@example.com"
    again = _import(company, "fixed.csv", _csv(lines), django_capture_on_commit_callbacks)
    assert again.status == ImportStatus.DONE
    ann = Contact.objects.for_company(company).get()
    assert ann.phone == "+77011234567"
    assert ann.properties == {"note": EVIL, "=cmd": "@SUM(A1)"}


def test_the_empty_error_report_escapes_the_header_too(
    personas: dict[str, Persona], company: Company
) -> None:
    contact_import = ContactImport.objects.create(
        company=company, file_name="x.csv", headers=["email", "-x"], status=ImportStatus.DONE
    )
    url = reverse(
        "contacts:import_errors",
        kwargs={"company_slug": company.slug, "import_id": contact_import.public_id},
    )
    body = personas[Role.MANAGER].client.get(url).content.decode("utf-8-sig")
    assert body.splitlines()[0] == "email,'-x,error_line,error"


def test_one_rule_for_formula_cells() -> None:
    for text in (EVIL, "+cmd", "-1+2", "@SUM(A1)", "\tx", "\rx", "=1"):
        assert spreadsheet_safe(text) == "'" + text
        assert spreadsheet_unescape(spreadsheet_safe(text)) == text
    # Numbers (typed, or as plain text like a negative NPS) and other text stay as they are.
    for value in (-12.5, 3, None, "-12.5", "+77011234567", "1e-5", "plain", "'quoted", ""):
        assert spreadsheet_safe(value) == value
    assert spreadsheet_row(["a", "=b", 1]) == ["a", "'=b", 1]
    assert spreadsheet_unescape("'quoted") == "'quoted"


def test_a_nul_character_in_a_cell_is_a_row_error_not_a_failed_import(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    """PostgreSQL text cannot hold NUL: one such cell failed the whole chunk, and the import."""
    content = (
        b"email,name,plan\n"
        b"ann@example.com,Ann,pro\n"
        b"bob@example.com,B\x00b,free\n"
        b"cat@example.com,Cat,te\x00am\n"
    )
    result = _import(company, "x.csv", content, django_capture_on_commit_callbacks)
    assert result.status == ImportStatus.DONE
    assert (result.created_count, result.invalid_count) == (1, 2)
    assert [(e["line"], e["column"]) for e in result.errors] == [(3, "name"), (4, "plan")]
    assert "NUL" in result.errors[0]["reason"]
    assert set(Contact.objects.for_company(company).values_list("email", flat=True)) == {
        "ann@example.com"
    }
    # In the header: the file is refused (the mapping could not be stored).
    result = _import(
        company, "y.csv", b"email,pl\x00an\na@b.cd,x\n", django_capture_on_commit_callbacks
    )
    assert (result.status, result.failure) == (
        ImportStatus.FAILED,
        "A column name contains a NUL character.",
    )


def test_an_unexpected_error_while_reading_ends_the_import(
    company: Company, django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch.object(imports, "read_head", side_effect=RecursionError("deep")):
        result = _import(company, "x.csv", b"email\na@b.cd\n", django_capture_on_commit_callbacks)
    assert (result.status, result.failure) == (ImportStatus.FAILED, "The file could not be read.")
