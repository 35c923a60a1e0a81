"""Contact import from CSV and XLSX: streamed, validated per row, written in bulk chunks.

How an import goes:

1. ``contact_import_create`` stores the upload (default storage, so a worker on another
   machine reads the same file) and reads only its header row; ``suggest_mapping`` proposes
   a target for each column (email, phone, name, language, time_zone, external_id; anything
   else becomes a property named after the header).
2. ``contact_import_start`` fixes the mapping and enqueues the Celery task
   ``surveys.import_contacts`` (inline in the embedded default and in unit tests).
3. ``contact_import_run`` streams the file row by row: the CSV module over a text wrapper of
   the stored file, or openpyxl's read-only mode for XLSX. Nothing holds more than one chunk
   (``CHUNK_SIZE`` rows) in memory, so a file of a million rows imports in bounded memory.

Rules of a row:

* ``line`` is the row number as a spreadsheet shows it (the header is line 1). Blank rows
  are skipped; a blank cell means "leave this field as it is".
* A row updates the contact with its external id; failing that, the one with its email;
  otherwise it creates a contact (which needs an email or a phone). A row without external
  id or email always creates a new contact (phone numbers are not unique, so never a key).
* The same person twice in one file: the later row updates what the earlier one wrote.
* Invalid rows (bad email, phone, language, time zone, a conflict with another contact)
  are skipped and reported with line, column and reason: the first ``ERRORS_KEPT`` in
  ``ContactImport.errors``, all of them in ``error_report`` (the original row plus ``error``).

Each chunk costs a constant number of queries (one SELECT by external id, one by email, one
bulk INSERT, one bulk UPDATE, one progress UPDATE) and is written in one transaction, so no
row is ever half-written. If a chunk fails for a reason other than a race on the unique keys
(retried once), the import stops as ``failed``; the chunks before it stay imported, and a
re-import of the same file updates them instead of duplicating.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from companies.models import Company, User
from surveys.models import Contact, ContactImport, ImportStatus
from surveys.services import (
    PROPERTY_KEY_MAX_LENGTH,
    contact_phone_region,
    merge_properties,
    normalize_email,
    normalize_language,
    normalize_phone,
    normalize_property,
    normalize_time_zone,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
ERRORS_KEPT = 100
SNIFF_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
IGNORE = "ignore"
PROPERTY_PREFIX = "property:"
FIELDS = ("email", "phone", "name", "language", "time_zone", "external_id")
ADDRESS_FIELDS = ("email", "phone", "external_id")
# The error report's own columns: ignored when the report is imported again after fixing.
REPORT_LINE, REPORT_ERROR = "error_line", "error"

_ALIASES = {
    "email": {"email", "e_mail", "email_address", "mail", "почта", "электронная_почта"},
    "phone": {"phone", "phone_number", "mobile", "mobile_phone", "tel", "telephone", "телефон"},
    "name": {"name", "full_name", "fullname", "contact_name", "имя", "фио"},
    "language": {"language", "lang", "locale", "язык"},
    "time_zone": {"time_zone", "timezone", "tz", "часовой_пояс"},
    "external_id": {"external_id", "externalid", "customer_id", "user_id", "client_id", "id"},
}
_UPDATE_FIELDS = [*FIELDS, "properties", "updated_at"]


class ImportFileError(Exception):
    """The file as a whole cannot be read (format, encoding, no header row)."""


# --- Reading files -----------------------------------------------------------------------------


def file_format(file_name: str) -> str:
    name = file_name.lower()
    if name.endswith(".xlsx"):
        return "xlsx"
    if name.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise ImportFileError(_("Upload a .csv or .xlsx file."))


def _csv_reader(binary: IO[bytes]) -> Iterator[list[str]]:
    """Rows of a CSV file, decoded lazily: UTF-8 (with or without BOM), else Windows-1251.

    Excel in Russian locales saves CSV as Windows-1251 with ``;`` between fields: the first
    64 KB decide the encoding and the delimiter. The text wrapper decodes as the csv module
    reads, so the whole file is never in memory.
    """
    sample = binary.read(SNIFF_BYTES)
    binary.seek(0)
    encoding = "utf-8-sig"
    try:
        # A multi-byte character cut at the sample's end is not an encoding error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        encoding = "cp1251"
    text_sample = sample.decode(encoding, errors="ignore")
    try:
        dialect: Any = csv.Sniffer().sniff(text_sample.split("\n", 1)[0] or ",", ",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    try:
        yield from csv.reader(text, delimiter=delimiter)
    except UnicodeDecodeError as exc:
        raise ImportFileError(_("The file is not valid UTF-8 text.")) from exc
    except csv.Error as exc:
        raise ImportFileError(_("The CSV file is malformed: %(error)s") % {"error": exc}) from exc
    finally:
        if not binary.closed:
            text.detach()  # leave the underlying file to its owner


def _xlsx_reader(binary: IO[bytes]) -> Iterator[list[Any]]:
    """Rows of the first sheet, streamed (openpyxl read-only mode keeps one row at a time)."""
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        workbook = load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(_("The file is not a valid .xlsx workbook.")) from exc
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    finally:
        workbook.close()


def iter_file_rows(binary: IO[bytes], fmt: str) -> Iterator[list[Any]]:
    return _xlsx_reader(binary) if fmt == "xlsx" else _csv_reader(binary)


def _cell_text(value: Any) -> str:
    """A cell as text for the core fields (XLSX gives numbers: 77011234567.0 → "77011234567")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _cell_property(value: Any) -> str | int | float | bool | None:
    """A cell as a property value: XLSX keeps its type, dates become ISO text, blank → None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool | int | float):
        return value
    return _cell_text(value) or None


def read_headers(binary: IO[bytes], fmt: str) -> list[str]:
    """The header row (first non-blank row); raises ImportFileError."""
    rows = iter_file_rows(binary, fmt)
    try:
        for row in rows:
            headers = [_cell_text(cell) for cell in row]
            while headers and not headers[-1]:
                headers.pop()
            if headers:
                _check_headers(headers)
                return headers
    finally:
        if hasattr(rows, "close"):
            rows.close()
    raise ImportFileError(_("The file is empty: the first row must name the columns."))


def _check_headers(headers: list[str]) -> None:
    seen: set[str] = set()
    for header in headers:
        if header and header in seen:
            raise ImportFileError(
                _("The column “%(header)s” appears twice in the header row.") % {"header": header}
            )
        seen.add(header)


# --- Mapping -----------------------------------------------------------------------------------


def _header_key(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").replace(".", " ").split())


def suggest_mapping(headers: Iterable[str]) -> dict[str, str]:
    """A target for every column: a known field by its name, else a property of that name."""
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        if not header:
            continue
        key = _header_key(header)
        target = next(
            (name for name, aliases in _ALIASES.items() if key in aliases and name not in used),
            None,
        )
        if key in (REPORT_LINE, REPORT_ERROR) or (target is None and not header.strip()):
            mapping[header] = IGNORE
        elif target is not None:
            mapping[header] = target
            used.add(target)
        else:
            mapping[header] = PROPERTY_PREFIX + header.strip()[:PROPERTY_KEY_MAX_LENGTH]
    return mapping


def mapping_choices() -> list[str]:
    return [*FIELDS, "property", IGNORE]


def validate_mapping(  # noqa: PLR0912 (one branch per kind of mistake, each with its message)
    headers: list[str], mapping: dict[str, Any]
) -> dict[str, str]:
    """Complete and check a mapping (header → target); missing headers get the suggestion.

    Targets: a field name, ``property`` (named after the header), ``property:<key>`` or
    ``ignore``. Raises ``ValidationError`` keyed ``mapping``.
    """
    if not isinstance(mapping, dict):
        raise ValidationError({"mapping": [_("The mapping must be an object: column → field.")]})
    unknown = [h for h in mapping if h not in headers]
    if unknown:
        raise ValidationError(
            {"mapping": [_("No column named “%(header)s” in the file.") % {"header": unknown[0]}]}
        )
    suggested = suggest_mapping(headers)
    result: dict[str, str] = {}
    taken: dict[str, str] = {}
    errors: list[str] = []
    for header in headers:
        if not header:
            continue
        target = mapping.get(header, suggested.get(header, IGNORE))
        if not isinstance(target, str):
            errors.append(_("Column “%(header)s”: unknown target.") % {"header": header})
            continue
        target = target.strip()
        if target == "property":
            target = PROPERTY_PREFIX + header.strip()[:PROPERTY_KEY_MAX_LENGTH]
        if target.startswith(PROPERTY_PREFIX):
            key = target[len(PROPERTY_PREFIX) :].strip()
            if not key or len(key) > PROPERTY_KEY_MAX_LENGTH:
                errors.append(
                    _("Column “%(header)s”: a property name needs 1 to %(max)d characters.")
                    % {"header": header, "max": PROPERTY_KEY_MAX_LENGTH}
                )
                continue
            target = PROPERTY_PREFIX + key
        elif target not in FIELDS and target != IGNORE:
            errors.append(
                _("Column “%(header)s”: unknown target “%(target)s”.")
                % {"header": header, "target": target}
            )
            continue
        if target != IGNORE:
            if target in taken:
                errors.append(
                    _("Columns “%(a)s” and “%(b)s” both go to %(target)s.")
                    % {"a": taken[target], "b": header, "target": target}
                )
                continue
            taken[target] = header
        result[header] = target
    if not errors and not any(t in ADDRESS_FIELDS for t in result.values()):
        errors.append(_("Map at least one column to email, phone or external_id."))
    if errors:
        raise ValidationError({"mapping": errors})
    return result


# --- Rows --------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedRow:
    line: int
    cells: list[Any]
    fields: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportCounts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    invalid: int = 0


class _RowParser:
    """Turns raw cells into validated fields; one per import (the plan is computed once)."""

    def __init__(self, headers: list[str], mapping: dict[str, str], region: str | None) -> None:
        self.region = region
        self.headers = headers
        # (column index, header, target) for every column that is not ignored.
        self.plan = [
            (index, header, mapping[header])
            for index, header in enumerate(headers)
            if header and mapping.get(header, IGNORE) != IGNORE
        ]

    def parse(self, line: int, cells: list[Any]) -> tuple[ParsedRow, list[tuple[str, str]]]:
        row = ParsedRow(line=line, cells=cells)
        errors: list[tuple[str, str]] = []
        width = len(cells)
        for index, header, target in self.plan:
            raw = cells[index] if index < width else None
            try:
                if target.startswith(PROPERTY_PREFIX):
                    value = _cell_property(raw)
                    if value is not None:
                        key, value = normalize_property(target[len(PROPERTY_PREFIX) :], value)
                        row.properties[key] = value
                    continue
                text = _cell_text(raw)
                if not text:
                    continue
                row.fields[target] = self._field(target, text)
            except ValidationError as exc:
                errors.append((header, " ".join(exc.messages)))
        return row, errors

    def _field(self, target: str, text: str) -> str:
        if target == "email":
            return normalize_email(text)
        if target == "phone":
            return normalize_phone(text, region=self.region)
        if target == "language":
            return normalize_language(text)
        if target == "time_zone":
            return normalize_time_zone(text)
        if target == "name" and len(text) > 200:
            raise ValidationError(_("At most 200 characters."))
        if target == "external_id" and len(text) > 128:
            raise ValidationError(_("At most 128 characters."))
        return text


def _write_chunk(  # noqa: PLR0912 (the matching rules, kept together to read as one)
    *, company: Company, rows: list[ParsedRow]
) -> tuple[int, int, list[tuple[ParsedRow, str, str]]]:
    """Match and write one chunk in one transaction; returns (created, updated, rejected).

    Called inside ``transaction.atomic``. Rejected rows (conflicts with other contacts) are
    returned, not reported, so that a retried chunk does not report them twice.
    """
    contacts = Contact.objects.for_company(company)
    external_ids = {r.fields["external_id"] for r in rows if "external_id" in r.fields}
    emails = {r.fields["email"] for r in rows if "email" in r.fields}
    by_external: dict[str, Contact] = (
        {c.external_id: c for c in contacts.filter(external_id__in=external_ids) if c.external_id}
        if external_ids
        else {}
    )
    by_email: dict[str, Contact] = (
        {c.email: c for c in contacts.filter(email__in=emails) if c.email} if emails else {}
    )
    new: dict[int, Contact] = {}
    changed: dict[int, Contact] = {}
    rejected: list[tuple[ParsedRow, str, str]] = []
    now = timezone.now()
    for row in rows:
        fields = row.fields
        external_id, email = fields.get("external_id"), fields.get("email")
        contact = by_external.get(external_id) if external_id else None
        if contact is None and email:
            contact = by_email.get(email)
            other = contact.external_id if contact is not None else None
            if external_id and other and other != external_id:
                rejected.append(
                    (
                        row,
                        "external_id",
                        _("This email address belongs to a contact with external id %(other)s.")
                        % {"other": other},
                    )
                )
                continue
        if contact is not None and email and by_email.get(email) not in (None, contact):
            rejected.append((row, "email", _("Another contact already has this email address.")))
            continue
        if contact is None:
            if not (email or fields.get("phone")):
                rejected.append(
                    (row, "email", _("A new contact needs an email address or a phone number."))
                )
                continue
            contact = Contact(company=company, created_at=now, updated_at=now)
            new[id(contact)] = contact
        elif contact.pk is not None:
            changed[id(contact)] = contact
        old_email = contact.email
        for name, value in fields.items():
            setattr(contact, name, value)
        if row.properties:
            contact.properties = merge_properties(contact.properties, row.properties)
        contact.updated_at = now
        if old_email and old_email != contact.email:
            by_email.pop(old_email, None)
        if contact.email:
            by_email[contact.email] = contact
        if contact.external_id:
            by_external[contact.external_id] = contact
    if new:
        Contact.objects.bulk_create(list(new.values()))
    if changed:
        contacts.bulk_update(list(changed.values()), _UPDATE_FIELDS)
    created = len(new)
    return created, len(rows) - len(rejected) - created, rejected


class _ErrorReport:
    """The rejected rows as CSV (original cells + line + reason), spooled to a temp file."""

    def __init__(self, headers: list[str]) -> None:
        self.headers = headers
        self.file: Any = None
        self.writer: Any = None
        self.kept: list[dict[str, Any]] = []

    def add(self, row: ParsedRow, problems: list[tuple[str, str]]) -> None:
        if self.file is None:
            # Closed by save_to (the report lives across many chunks).
            self.file = tempfile.TemporaryFile(  # noqa: SIM115
                mode="w+", encoding="utf-8-sig", newline=""
            )
            self.writer = csv.writer(self.file)
            self.writer.writerow([*self.headers, REPORT_LINE, REPORT_ERROR])
        cells = [_cell_text(c) for c in row.cells[: len(self.headers)]]
        cells += [""] * (len(self.headers) - len(cells))
        reason = "; ".join(f"{column}: {text}" for column, text in problems)
        self.writer.writerow([*cells, row.line, reason])
        for column, text in problems:
            if len(self.kept) < ERRORS_KEPT:
                self.kept.append({"line": row.line, "column": column, "reason": text})

    def save_to(self, contact_import: ContactImport) -> None:
        if self.file is None:
            return
        self.file.seek(0)
        with tempfile.TemporaryFile() as binary:
            # FileField storage wants bytes; copy in blocks (the report may be large).
            while block := self.file.read(64 * 1024):
                binary.write(block.encode("utf-8"))
            binary.seek(0)
            contact_import.error_report.save("errors.csv", File(binary), save=False)
        self.file.close()


def import_rows(
    *,
    company: Company,
    headers: list[str],
    mapping: dict[str, str],
    rows: Iterable[list[Any]],
    report: _ErrorReport,
    first_line: int = 2,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Any = None,
) -> ImportCounts:
    """Validate and write ``rows`` (cells in header order) chunk by chunk.

    ``rows`` may be any iterator: it is consumed lazily, one chunk at a time.
    """
    parser = _RowParser(headers, mapping, contact_phone_region(company=company))
    counts = ImportCounts()
    chunk: list[ParsedRow] = []

    def flush() -> None:
        for attempt in (1, 2):
            try:
                with transaction.atomic():
                    created, updated, rejected = _write_chunk(company=company, rows=chunk)
                    if on_chunk is not None:
                        on_chunk(counts, created, updated, len(rejected))
                break
            except IntegrityError:
                # Another writer took an email / external id of this chunk meanwhile: the
                # chunk rolled back whole; match again against what is there now.
                if attempt == 2:
                    raise
        counts.created += created
        counts.updated += updated
        for row, column, reason in rejected:
            counts.invalid += 1
            report.add(row, [(column, reason)])
        chunk.clear()

    line = first_line - 1
    for cells in rows:
        line += 1
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        counts.rows += 1
        row, problems = parser.parse(line, cells)
        if problems:
            counts.invalid += 1
            report.add(row, problems)
            continue
        if not row.fields and not row.properties:
            counts.invalid += 1
            report.add(row, [("", _("Nothing to import in this row."))])
            continue
        chunk.append(row)
        if len(chunk) >= chunk_size:
            flush()
    if chunk:
        flush()
    return counts


# --- The import as a whole ---------------------------------------------------------------------


def contact_import_create(
    *,
    company: Company,
    upload: UploadedFile,
    created_by: User | None = None,
) -> ContactImport:
    """Store an uploaded file and read its header row; raises ``ValidationError`` (``file``)."""
    file_name = (upload.name or "contacts.csv").rsplit("/", 1)[-1][:255]
    try:
        fmt = file_format(file_name)
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise ImportFileError(
                _("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // 2**20}
            )
        upload.seek(0)
        headers = read_headers(upload.file, fmt)  # type: ignore[arg-type]
    except ImportFileError as exc:
        raise ValidationError({"file": [str(exc)]}) from exc
    upload.seek(0)
    contact_import = ContactImport(
        company=company,
        file_name=file_name,
        headers=headers,
        mapping=suggest_mapping(headers),
        created_by=created_by,
    )
    contact_import.file.save(file_name, upload, save=False)
    contact_import.save()
    return contact_import


def contact_import_start(
    *, company: Company, contact_import: ContactImport, mapping: dict[str, Any] | None = None
) -> ContactImport:
    """Fix the mapping (default: the suggestion) and run the import in the task queue.

    Raises ``ValidationError`` for a bad mapping or an import that already started.
    """
    from surveys.tasks import import_contacts

    if contact_import.company_id != company.pk:
        raise ValueError("import belongs to another company")
    final = validate_mapping(
        contact_import.headers, contact_import.mapping if mapping is None else mapping
    )
    started = (
        ContactImport.objects.for_company(company)
        .filter(pk=contact_import.pk, status=ImportStatus.PENDING)
        .update(mapping=final, status=ImportStatus.RUNNING)
    )
    if not started:
        raise ValidationError(_("This import has already started."))
    contact_import.mapping = final
    contact_import.status = ImportStatus.RUNNING
    import_contacts.delay_on_commit(company.pk, contact_import.pk)
    return contact_import


def contact_import_run(*, company: Company, import_pk: int) -> ContactImport | None:
    """Run a started import (the task's body). Claims it first: a redelivered task whose
    import another run already claimed does nothing. Returns the import, or None if not ours."""
    claimed = (
        ContactImport.objects.for_company(company)
        .filter(pk=import_pk, status=ImportStatus.RUNNING, started_at=None)
        .update(started_at=timezone.now())
    )
    if not claimed:
        return None
    contact_import = ContactImport.objects.for_company(company).get(pk=import_pk)
    report = _ErrorReport(contact_import.headers)
    imports = ContactImport.objects.for_company(company).filter(pk=import_pk)

    def progress(counts: ImportCounts, created: int, updated: int, invalid: int) -> None:
        # Inside the chunk's transaction: the counts always match what is committed.
        imports.update(
            rows_total=counts.rows,
            created_count=counts.created + created,
            updated_count=counts.updated + updated,
            invalid_count=counts.invalid + invalid,
        )

    counts = ImportCounts()
    try:
        with contact_import.file.open("rb") as binary:
            rows = iter_file_rows(binary, file_format(contact_import.file_name))
            header_seen = False
            header_line = 0

            def data_rows() -> Iterator[list[Any]]:
                nonlocal header_seen, header_line
                for cells in rows:
                    if not header_seen:
                        header_line += 1
                        if any(_cell_text(c) for c in cells):
                            header_seen = True
                        continue
                    yield cells

            data = data_rows()
            first = next(data, None)
            if first is not None:

                def chained() -> Iterator[list[Any]]:
                    yield first
                    yield from data

                counts = import_rows(
                    company=company,
                    headers=contact_import.headers,
                    mapping=contact_import.mapping,
                    rows=chained(),
                    report=report,
                    first_line=header_line + 1,
                    on_chunk=progress,
                )
    except (ImportFileError, DatabaseError, ValidationError) as exc:
        # The failed chunk rolled back whole; the chunks before it stay (complete rows).
        logger.warning("contact import %s failed: %s", contact_import.public_id, exc)
        contact_import.refresh_from_db()
        contact_import.status = ImportStatus.FAILED
        contact_import.failure = str(exc)[:500]
    else:
        contact_import.status = ImportStatus.DONE
        contact_import.rows_total = counts.rows
        contact_import.created_count = counts.created
        contact_import.updated_count = counts.updated
        contact_import.invalid_count = counts.invalid
    contact_import.errors = report.kept
    report.save_to(contact_import)
    contact_import.finished_at = timezone.now()
    contact_import.save()
    return contact_import
