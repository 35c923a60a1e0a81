"""Contact import from CSV and XLSX: streamed, validated per row, written in bulk chunks.

How an import goes:

1. ``contact_import_create`` (the web request, the API call) only stores the upload (default
   storage, so a worker on another machine reads the same file), after the checks that need
   no reading (extension, size, empty, an .xlsx that is no zip), and wakes a worker: status
   ``reading``. Nothing of the file is parsed in the request.
2. The worker (``contact_import_run``, Celery task ``surveys.import_contacts``; woken like
   all owed work: the import row is the debt, the stale sweep re-wakes it) reads the header
   row and the first values of each column (``read_head``); ``suggest_mapping`` proposes a
   target for each column (email, phone, name, language, time_zone, external_id; first and
   last name, joined into the name; a ``properties`` column of ``name=value`` pairs;
   anything else becomes a property named after the header). Status ``pending``: the
   import's page becomes the mapping screen, which shows those values. An import started
   with its mapping (the API's ``mapping``, or none for the suggestion: ``auto_start``)
   goes straight on to step 3 in the same run.
3. ``contact_import_start`` fixes the mapping and wakes the worker again (``running``).
   ``contact_import_run`` streams the file row by row: the CSV module over a text wrapper of
   the stored file, or openpyxl's read-only mode for XLSX. Nothing holds more than one chunk
   (``CHUNK_SIZE`` rows) in memory, so a file of a million rows imports in bounded memory.

Limits (each refused with its own message, see ``MAX_COLUMNS`` and below): columns, the
length of a column name, of a CSV line and of an imported cell, rows per file, and for XLSX
the unpacked size of every part of the zip, checked in its directory before openpyxl reads
it and again while it is read. A malformed file fails the import with a file-level message.

Rules of a row:

* ``line`` is the row number as a spreadsheet shows it (the header is line 1). Blank rows
  are skipped; a blank cell means "leave this field as it is".
* A row updates the contact with its external id; failing that, the one with its email;
  otherwise it creates a contact (which needs an email or a phone). A row without external
  id or email always creates a new contact (phone numbers are not unique, so never a key).
* The same person twice in one file: the later row updates what the earlier one wrote.
* Invalid rows (bad email, phone, language, time zone, a conflict with another contact)
  are skipped and reported with line, column and reason: the first ``ERRORS_KEPT`` in
  ``ContactImport.errors``, all of them in ``error_report`` (the original row plus ``error``,
  formula-like cells escaped by ``companies.spreadsheets``; imported again, the escaping
  comes off).
* A malformed phone beside a valid email does not cost the row: the contact is imported
  without that phone, and the row is reported as a warning (``"warning": true`` in
  ``errors``, "Warning: …" in the report), as is a property part that is not ``name=value``.

Each chunk costs a constant number of queries (one SELECT by external id or email, the
writes, one progress UPDATE) and is written in one transaction, so no row is ever
half-written. If a chunk fails for a reason other than a race on the unique keys (retried
once), the import stops as ``failed``; the chunks before it stay imported, and a re-import
of the same file updates them instead of duplicating.

Writing a chunk: the rows are matched in Python (``_match``, the same code for every
database), then written either with the ORM (``bulk_update`` + ``bulk_create``, chunks of
``CHUNK_SIZE``; SQLite, the embedded default) or, on PostgreSQL, with COPY of the chunk into
a session temp table and one ``UPDATE … FROM`` plus one ``INSERT … SELECT`` (chunks of
``COPY_CHUNK_SIZE``), about ten times faster. Both write the same contacts (tested). A
worker's import on PostgreSQL runs as a pipeline of three threads (``_ChunkWriter``):
chunk n is written while chunk n+1's contacts are looked up and chunk n+2 is parsed; a
chunk matched before the one ahead of it committed is matched again if that one touched its
keys, and a chunk that meets a unique key another transaction took meanwhile is matched
again and retried, as ever.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import functools
import gc
import io
import json
import logging
import re
import sys
import threading
import zipfile
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import EmailValidator
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from companies import rls
from companies.models import Company, User, new_ordered_public_ids
from companies.spreadsheets import SpooledCsvReport, spreadsheet_unescape
from companies.text import UNSTORABLE_MESSAGE, is_storable
from companies.wake import wake
from surveys.models import Contact, ContactImport, ImportStatus
from surveys.services.contacts import (
    PROPERTY_KEY_MAX_LENGTH,
    PROPERTY_VALUE_MAX_LENGTH,
    contact_phone_region,
    merge_properties,
    normalize_language,
    normalize_phone,
    normalize_property,
    normalize_time_zone,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
# Rows per chunk on the COPY path: fewer round trips; a chunk is still a few MB at most.
COPY_CHUNK_SIZE = 10_000
ERRORS_KEPT = 100
EMAIL_MAX_LENGTH = 254  # Contact.email
SNIFF_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# Limits of what a worker reads, each refused with its own message: the header's columns
# (file), a column name and a cell (row: the cells a row imports; the csv module bounds every
# other CSV cell at 131,072 characters), a physical CSV line (file), and the rows after the
# header (the first MAX_ROWS are imported, then the import stops as failed).
MAX_COLUMNS = 500
MAX_HEADER_LENGTH = 255
MAX_CELL_LENGTH = 32_767  # Excel's own limit for a cell
MAX_LINE_LENGTH = 1_000_000
MAX_ROWS = 1_000_000
# Blank lines before the header row (a workbook's first row can claim to be row 10⁹).
MAX_LINES_BEFORE_HEADER = 1000
# An .xlsx is a zip: every part's unpacked size is checked in the zip's directory before
# openpyxl reads any of it, and again while it is read (the directory can lie). Worksheets
# are streamed; every other part (shared strings above all) openpyxl holds in memory whole.
# A part over 1 MB that unpacks to more than 100 times its packed size is a zip bomb (the
# ratio Apache POI refuses too; real spreadsheet XML packs 5 to 20 times).
XLSX_SHEET_MAX_BYTES = 512 * 1024 * 1024
XLSX_PART_MAX_BYTES = 64 * 1024 * 1024
XLSX_RATIO_FROM_BYTES = 1024 * 1024
XLSX_MAX_RATIO = 100
XLSX_MAX_PARTS = 10_000
IGNORE = "ignore"
PROPERTY_PREFIX = "property:"
FIELDS = ("email", "phone", "name", "language", "time_zone", "external_id")
ADDRESS_FIELDS = ("email", "phone", "external_id")
# Targets that are not columns of a contact: the name in two parts (joined into ``name``)
# and a column of ``key=value`` properties as people type them.
FIRST_NAME, LAST_NAME, PROPERTIES = "first_name", "last_name", "properties"
TARGETS = (*FIELDS, FIRST_NAME, LAST_NAME, PROPERTIES)
# The mapping screen's sample values: per column, from the first rows of the file.
SAMPLE_VALUES = 3
SAMPLE_ROWS = 200
SAMPLE_MAX_LENGTH = 60
# The error report's own columns: ignored when the report is imported again after fixing.
REPORT_LINE, REPORT_ERROR = "error_line", "error"

_ALIASES = {
    "email": {"email", "e_mail", "email_address", "mail", "почта", "электронная_почта"},
    "phone": {"phone", "phone_number", "mobile", "mobile_phone", "tel", "telephone", "телефон"},
    "name": {"name", "full_name", "fullname", "contact_name", "имя", "фио", "аты_жөні"},
    FIRST_NAME: {"first_name", "firstname", "given_name", "forename", "имя", "аты"},
    LAST_NAME: {"last_name", "lastname", "surname", "family_name", "фамилия", "тегі"},
    PROPERTIES: {"properties", "attributes", "свойства", "атрибуты", "қасиеттер"},
    "language": {"language", "lang", "locale", "язык"},
    "time_zone": {"time_zone", "timezone", "tz", "часовой_пояс"},
    "external_id": {"external_id", "externalid", "customer_id", "user_id", "client_id", "id"},
}
_UPDATE_FIELDS = [*FIELDS, "properties", "updated_at"]


class ImportFileError(Exception):
    """The file as a whole cannot be read (format, encoding, no header row, a limit)."""


# --- Reading files -----------------------------------------------------------------------------


def file_format(file_name: str) -> str:
    name = file_name.lower()
    if name.endswith(".xlsx"):
        return "xlsx"
    if name.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise ImportFileError(_("Upload a .csv or .xlsx file."))


def _lines(text: IO[str], first: int = 1) -> Iterator[str]:
    """The physical lines of ``text``, each at most ``MAX_LINE_LENGTH`` characters: a file
    of one endless line is refused after reading that much, not parsed into a million cells."""
    readline = text.readline
    limit = MAX_LINE_LENGTH + 2  # the line's own end (\r\n) does not count
    number = first - 1
    while line := readline(limit):
        number += 1
        if len(line) == limit and line[-1] not in "\r\n":
            raise ImportFileError(
                _("Line %(line)d is longer than %(max)d characters.")
                % {"line": number, "max": MAX_LINE_LENGTH}
            )
        yield line


def _csv_reader(binary: IO[bytes]) -> Iterator[list[str]]:
    """Rows of a CSV file, decoded lazily: UTF-8 (with or without BOM), else Windows-1251.

    Excel in Russian locales saves CSV as Windows-1251 with ``;`` between fields: the first
    64 KB decide the encoding and the delimiter. The text wrapper decodes as the csv module
    reads, so the whole file is never in memory; no line is longer than ``MAX_LINE_LENGTH``
    and no cell longer than the csv module's field limit (131,072 characters).
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
    first_line = text_sample.split("\n", 1)[0][:MAX_LINE_LENGTH] or ","
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, ",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    reader = csv.reader(_lines(text), delimiter=delimiter)
    try:
        yield from reader
    except UnicodeDecodeError as exc:
        raise ImportFileError(_("The file is not valid UTF-8 text.")) from exc
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise ImportFileError(
                _("A cell near line %(line)d is longer than %(max)d characters.")
                % {"line": reader.line_num, "max": csv.field_size_limit()}
            ) from exc
        raise ImportFileError(_("The CSV file is malformed: %(error)s") % {"error": exc}) from exc
    finally:
        if not binary.closed:
            text.detach()  # leave the underlying file to its owner


class _BoundedPart:
    """A part of the workbook as openpyxl reads it, refused once it gives more bytes than
    its size in the zip's directory (the directory can lie) or than the limit for it."""

    def __init__(self, stream: IO[bytes], name: str, limit: int) -> None:
        self.stream = stream
        self.name = name
        self.left = limit

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.left -= len(data)
        if self.left < 0:
            raise ImportFileError(_xlsx_part_too_large(self.name))
        return data

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> _BoundedPart:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _BoundedZip(zipfile.ZipFile):
    """The workbook's zip, every part read through ``_BoundedPart``."""

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, **kwargs: Any) -> Any:
        stream = super().open(name, mode, pwd, **kwargs)
        if mode != "r":
            return stream
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        return _BoundedPart(stream, info.filename, min(info.file_size, _xlsx_part_limit(info)))


def _xlsx_part_limit(info: zipfile.ZipInfo) -> int:
    # Worksheets are streamed (a row at a time); every other part (shared strings, styles)
    # openpyxl holds in memory whole.
    if info.filename.startswith("xl/worksheets/"):
        return XLSX_SHEET_MAX_BYTES
    return XLSX_PART_MAX_BYTES


def _xlsx_part_too_large(name: str) -> str:
    return _(
        "The .xlsx file is refused: its part %(part)s unpacks to more than a spreadsheet "
        "of this size can hold. Save it as CSV and import that."
    ) % {"part": name[:100]}


def _xlsx_check_parts(archive: zipfile.ZipFile) -> None:
    """Refuse a workbook whose parts unpack too large (by the zip's directory) or too much
    larger than they are packed (a zip bomb), before openpyxl reads any of them."""
    infos = archive.infolist()
    if len(infos) > XLSX_MAX_PARTS:
        raise ImportFileError(_("The .xlsx file has too many parts to be a spreadsheet."))
    for info in infos:
        ratio_exceeded = (
            info.file_size > XLSX_RATIO_FROM_BYTES
            and info.file_size > XLSX_MAX_RATIO * max(info.compress_size, 1)
        )
        if info.file_size > _xlsx_part_limit(info) or ratio_exceeded:
            raise ImportFileError(_xlsx_part_too_large(info.filename))


def _xlsx_reader(binary: IO[bytes]) -> Iterator[list[Any]]:
    """Rows of the first sheet, streamed (openpyxl read-only mode keeps one row at a time).

    The parts are checked first (``_xlsx_check_parts``) and bounded while read; whatever
    openpyxl raises on a malformed workbook (truncated XML, no sheet, not a zip) is a
    file-level error.
    """
    from openpyxl.reader.excel import ExcelReader

    try:
        archive = _BoundedZip(binary)
        _xlsx_check_parts(archive)
        reader = ExcelReader(binary, read_only=True, data_only=True, keep_links=False)
        reader.archive.close()  # openpyxl's own view of the zip: read through ours instead
        reader.archive = archive
        reader.read()
        workbook = reader.wb
    except ImportFileError:
        raise
    except Exception as exc:  # openpyxl raises anything on a malformed file
        raise ImportFileError(_("The file is not a valid .xlsx workbook.")) from exc
    try:
        if not workbook.worksheets:
            raise ImportFileError(_("The .xlsx workbook has no sheet."))
        sheet = workbook.worksheets[0]
        # openpyxl pads every row to the sheet's declared width (or, undeclared, to the row's
        # last cell, which can be column 16,384): never wider than the columns we take.
        width = sheet.max_column
        capped = None if width is not None and width <= MAX_COLUMNS + 1 else MAX_COLUMNS + 1
        rows = sheet.iter_rows(values_only=True, max_col=capped)
        while True:
            try:
                row = next(rows, None)
            except ImportFileError:
                raise
            except Exception as exc:  # as above: a truncated or broken sheet
                raise ImportFileError(
                    _("The .xlsx workbook's first sheet cannot be read: it is damaged.")
                ) from exc
            if row is None:
                return
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
        value = spreadsheet_unescape(value.strip())
        return value or None
    if isinstance(value, bool | int | float):
        return value
    return _cell_text(value) or None


@dataclass
class FileHead:
    """What the mapping screen needs of a file: the header row, the first values of each
    column, and the line the header is on."""

    headers: list[str]
    samples: dict[str, list[str]]
    header_line: int


def read_head(
    binary: IO[bytes], fmt: str, *, per_column: int = SAMPLE_VALUES, max_rows: int = SAMPLE_ROWS
) -> FileHead:
    """The header row (first non-blank row) and, per column, the first ``per_column``
    distinct non-blank values from at most ``max_rows`` rows after it; raises
    ImportFileError. Reads a bounded part of the file whatever its size."""
    rows = iter_file_rows(binary, fmt)
    headers: list[str] = []
    columns: list[list[str]] = []
    line = 0
    try:
        for line, cells in enumerate(rows, start=1):
            if _blank(cells):
                if line >= MAX_LINES_BEFORE_HEADER:
                    raise ImportFileError(
                        _("The first %(max)d rows are empty: the first row must name the columns.")
                        % {"max": MAX_LINES_BEFORE_HEADER}
                    )
                continue
            headers = [spreadsheet_unescape(_cell_text(c)) for c in cells[: MAX_COLUMNS + 1]]
            while headers and not headers[-1]:
                headers.pop()
            if len(cells) > MAX_COLUMNS and not _blank(cells[MAX_COLUMNS:]):
                raise ImportFileError(
                    _("The file has more than %(max)d columns: keep the ones to import.")
                    % {"max": MAX_COLUMNS}
                )
            _check_headers(headers)
            break
        if not headers:
            raise ImportFileError(_("The file is empty: the first row must name the columns."))
        width = len(headers)
        columns = [[] for _ in range(width)]
        for read, cells in enumerate(rows, start=1):
            for index, cell in enumerate(cells[:width]):
                text = _cell_text(cell)[:SAMPLE_MAX_LENGTH]
                column = columns[index]
                if text and len(column) < per_column and text not in column and is_storable(text):
                    column.append(text)
            if read >= max_rows or all(len(c) >= per_column for c in columns):
                break
    finally:
        if hasattr(rows, "close"):
            rows.close()
    samples = {header: columns[i] for i, header in enumerate(headers) if header}
    return FileHead(headers, samples, line)


def read_headers(binary: IO[bytes], fmt: str) -> list[str]:
    """The header row (first non-blank row); raises ImportFileError."""
    return read_head(binary, fmt, max_rows=0).headers


def _check_headers(headers: list[str]) -> None:
    seen: set[str] = set()
    for header in headers:
        if not is_storable(header):
            raise ImportFileError(_("A column name contains a NUL character."))
        if header and header in seen:
            raise ImportFileError(
                _("The column “%(header)s” appears twice in the header row.")
                % {"header": header[:100]}
            )
        if len(header) > MAX_HEADER_LENGTH:
            raise ImportFileError(
                _("A column name is longer than %(max)d characters.") % {"max": MAX_HEADER_LENGTH}
            )
        seen.add(header)


# --- Mapping -----------------------------------------------------------------------------------


def _header_key(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").replace(".", " ").split())


def suggest_mapping(headers: Iterable[str]) -> dict[str, str]:
    """A target for every column: a known field by its name, else a property of that name."""
    headers = list(headers)
    # "Имя" alone is the whole name; beside a surname column ("Фамилия") it is the first name.
    split_name = any(_header_key(h) in _ALIASES[LAST_NAME] for h in headers if h)
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
        if split_name and key in _ALIASES[FIRST_NAME] and FIRST_NAME not in used:
            target = FIRST_NAME
        if key in (REPORT_LINE, REPORT_ERROR) or (target is None and not header.strip()):
            mapping[header] = IGNORE
        elif target is not None:
            mapping[header] = target
            used.add(target)
        else:
            mapping[header] = PROPERTY_PREFIX + header.strip()[:PROPERTY_KEY_MAX_LENGTH]
    return mapping


def mapping_choices() -> list[str]:
    return [*TARGETS, "property", IGNORE]


def check_mapping_shape(mapping: Any) -> None:
    """What can be checked of a mapping before the file's header is read: an object of
    column → a known target, no target twice. Raises ``ValidationError`` keyed ``mapping``
    (``validate_mapping`` checks the rest against the header)."""
    if not isinstance(mapping, dict):
        raise ValidationError({"mapping": [_("The mapping must be an object: column → field.")]})
    if len(mapping) > MAX_COLUMNS:
        raise ValidationError(
            {"mapping": [_("At most %(max)d columns can be mapped.") % {"max": MAX_COLUMNS}]}
        )
    errors: list[str] = []
    taken: dict[str, str] = {}
    for header, given in mapping.items():
        if not isinstance(given, str):
            errors.append(_("Column “%(header)s”: unknown target.") % {"header": header})
            continue
        target = given.strip()
        if target.startswith(PROPERTY_PREFIX):
            key = target[len(PROPERTY_PREFIX) :].strip()
            if not key or len(key) > PROPERTY_KEY_MAX_LENGTH:
                errors.append(
                    _("Column “%(header)s”: a property name needs 1 to %(max)d characters.")
                    % {"header": header, "max": PROPERTY_KEY_MAX_LENGTH}
                )
            continue
        if target not in TARGETS and target not in (IGNORE, "property"):
            errors.append(
                _("Column “%(header)s”: unknown target “%(target)s”.")
                % {"header": header, "target": target}
            )
        elif target in TARGETS:
            if target in taken:
                errors.append(
                    _("Columns “%(a)s” and “%(b)s” both go to %(target)s.")
                    % {"a": taken[target], "b": header, "target": target}
                )
            taken[target] = header
    if errors:
        raise ValidationError({"mapping": errors})


def validate_mapping(  # noqa: PLR0912 (one branch per kind of mistake, each with its message)
    headers: list[str], mapping: dict[str, Any]
) -> dict[str, str]:
    """Complete and check a mapping (header → target); missing headers get the suggestion.

    Targets: a field name, ``property`` (named after the header), ``property:<key>`` or
    ``ignore``. Raises ``ValidationError`` keyed ``mapping``.
    """
    if not isinstance(mapping, dict):
        raise ValidationError({"mapping": [_("The mapping must be an object: column → field.")]})
    known = set(headers)  # a set: a list made this check quadratic in the columns
    unknown = [h for h in mapping if h not in known]
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
        elif target not in TARGETS and target != IGNORE:
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
    # Values as stored: never None (a blank cell or a "remove" is left out when parsed).
    properties: dict[str, Any] = field(default_factory=dict)
    # (column, reason) of what was left out of a row that is imported all the same (a
    # malformed phone beside a valid email, a property line that is not key=value). None,
    # not an empty list, on the common row: nothing allocated for it.
    warnings: list[tuple[str, str]] | None = None


@dataclass
class ImportCounts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    invalid: int = 0
    warned: int = 0  # imported rows with a warning (counted in created / updated too)
    cut_at: int = 0  # the line at which the rows stopped (more than MAX_ROWS), if they did


# The dot-atom of Django's ``EmailValidator.user_regex`` for lower-case text (without its
# IGNORECASE, which also lets in a few non-ASCII letters: those take the full path).
_PLAIN_USER = re.compile(r"[-!#$%&'*+/=?^_`{}|~0-9a-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9a-z]+)*\Z")


class _EmailValidator(EmailValidator):
    """Django's email validator, remembering the domains it has already accepted.

    Checking the domain part (a long regex, IDNA) is most of the cost of validating an
    address, and an import has few distinct domains. The cache is per import and capped, so
    memory stays bounded whatever the file.
    """

    MAX_DOMAINS = 10_000

    def __init__(self) -> None:
        super().__init__()
        self._domains: set[str] = set()
        # The class's regexes are lazy objects (a proxy call per use): compile them here.
        self.user_regex = re.compile(self.user_regex.pattern, self.user_regex.flags)

    def __call__(self, value: str | None) -> None:
        # The common address in one match: a lower-case dot-atom (a subset of what the
        # validator's case-blind user regex accepts) at a domain accepted before. Anything
        # else goes through Django's checks, which give the message.
        if value:
            user, at, domain = value.rpartition("@")
            if at and len(value) <= 320 and domain in self._domains and _PLAIN_USER.match(user):
                return
        super().__call__(value)

    def validate_domain_part(self, domain_part: str) -> bool:
        if domain_part in self._domains:
            return True
        valid = bool(super().validate_domain_part(domain_part))
        if valid and len(self._domains) < self.MAX_DOMAINS:
            self._domains.add(domain_part)
        return valid


# Kinds of column in a parse plan (compared per cell, so small ints rather than strings).
_PROPERTY, _EMAIL, _PHONE, _LANGUAGE, _TIME_ZONE, _NAME, _EXTERNAL_ID = range(7)
_FIRST_NAME, _LAST_NAME, _PROPERTIES = range(7, 10)
_KINDS = {
    "email": _EMAIL,
    "phone": _PHONE,
    "language": _LANGUAGE,
    "time_zone": _TIME_ZONE,
    "name": _NAME,
    "external_id": _EXTERNAL_ID,
    FIRST_NAME: _FIRST_NAME,
    LAST_NAME: _LAST_NAME,
    PROPERTIES: _PROPERTIES,
}
NAME_MAX_LENGTH = 200  # Contact.name
_PROPERTY_LINES = re.compile(r"[;\r\n]+")


class _RowParser:
    """Turns raw cells into validated fields; one per import (the plan is computed once).

    Same rules as ``surveys.services.normalize_*``; what is cached lives as long as the
    import (accepted email domains, normalised phone numbers, language codes).
    """

    MAX_CACHED = 10_000

    def __init__(self, headers: list[str], mapping: dict[str, str], region: str | None) -> None:
        self.region = region
        self.headers = headers
        # (column index, header, kind, target, check) for every column that is not
        # ignored; ``check`` turns a field column's text into its value (None: properties).
        self.plan: list[tuple[int, str, int, str, Callable[[str], str] | None]] = []
        checks: dict[int, Callable[[str], str]] = {
            _EMAIL: self._email,
            _PHONE: self._phone,
            _LANGUAGE: self._language,
            _TIME_ZONE: self._time_zone,
            _NAME: _name,
            _FIRST_NAME: _name,
            _LAST_NAME: _name,
            _EXTERNAL_ID: _external_id,
        }
        for index, header in enumerate(headers):
            target = mapping.get(header, IGNORE) if header else IGNORE
            if target == IGNORE:
                continue
            if target.startswith(PROPERTY_PREFIX):
                # The key is the same on every row: checked (and stripped) once, here.
                key, _value = normalize_property(target[len(PROPERTY_PREFIX) :], None)
                self.plan.append((index, header, _PROPERTY, key, None))
            else:
                kind = _KINDS[target]
                self.plan.append((index, header, kind, target, checks.get(kind)))
        # The columns of a split name, if mapped: (header of the first part, for errors).
        self.name_parts = next(
            (header for _i, header, kind, *_ in self.plan if kind in (_FIRST_NAME, _LAST_NAME)),
            "",
        )
        self.email_validator = _EmailValidator()
        # Text → normalised value (or the error message) for the columns with few distinct
        # values; bounded so that a file of unique values does not grow them forever.
        self.languages: dict[str, str | ValidationError] = {}
        self.time_zones = _valid_time_zones()

    def parse(  # noqa: PLR0912 (the per-cell loop stays inline: it is the import's hot path)
        self, line: int, cells: list[Any]
    ) -> tuple[ParsedRow, list[tuple[str, str]]]:
        """The row's fields and properties, and its errors (any error rejects the row).

        A malformed phone is not an error when the row has an email: the contact is
        imported without that phone and the row carries a warning instead.
        """
        row = ParsedRow(line, cells, {}, {})
        fields = row.fields
        errors: list[tuple[str, str]] = []
        phone_error: tuple[str, str] | None = None
        width = len(cells)
        for index, header, kind, target, check in self.plan:
            raw = cells[index] if index < width else None
            try:
                if kind == _PROPERTY:
                    if type(raw) is str:
                        # Text (every CSV cell): what normalize_property checks of it.
                        text = raw.strip()
                        # (A leading ' may mark an escaped formula: _cell_property.)
                        if (
                            text
                            and text[0] != "'"
                            and len(text) <= PROPERTY_VALUE_MAX_LENGTH
                            and "\x00" not in text
                        ):
                            row.properties[target] = text
                            continue
                    value = _cell_property(raw)
                    if type(value) is str and "\x00" in value:
                        raise ValidationError(UNSTORABLE_MESSAGE)
                    if value is not None:
                        key, value = normalize_property(target, value)
                        row.properties[key] = value
                    continue
                text = raw.strip() if type(raw) is str else _cell_text(raw)
                if not text:
                    continue
                if text[0] == "'":  # a formula our own error report escaped: '+7 701…
                    text = spreadsheet_unescape(text)
                if "\x00" in text:  # PostgreSQL text cannot hold it (CSV cells can)
                    raise ValidationError(UNSTORABLE_MESSAGE)
                if kind == _PROPERTIES:
                    if len(text) > MAX_CELL_LENGTH:
                        raise ValidationError(
                            _("At most %(max)d characters in a cell.") % {"max": MAX_CELL_LENGTH}
                        )
                    self._typed_properties(row, header, text)
                else:
                    # (A field column's entry: its check is never None.)
                    fields[target] = check(text)  # type: ignore[misc]
            except ValidationError as exc:
                if kind == _PHONE:
                    phone_error = (header, " ".join(exc.messages))
                else:
                    errors.append((header, " ".join(exc.messages)))
        if self.name_parts:
            self._join_name(fields, errors)
        if phone_error is not None:
            _phone_problem(row, errors, phone_error)
        return row, errors

    def _join_name(self, fields: dict[str, Any], errors: list[tuple[str, str]]) -> None:
        """First and last name columns make the name (a full-name column, when filled, wins)."""
        parts = [fields.pop(FIRST_NAME, ""), fields.pop(LAST_NAME, "")]
        joined = " ".join(p for p in parts if p)
        if not joined or fields.get("name"):
            return
        if len(joined) > NAME_MAX_LENGTH:
            errors.append((self.name_parts, _("At most 200 characters.")))
        else:
            fields["name"] = joined

    def _typed_properties(self, row: ParsedRow, header: str, text: str) -> None:
        """A cell of properties as people type them: ``plan=pro; seats=3`` or one per line
        (a JSON object also does). A part that is not ``name=value`` is left out, with a
        warning; a blank value leaves that property as it is."""
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                parts = [(str(k), v) for k, v in parsed.items()]
            else:
                _warn(row, header, _("Not a valid JSON object: left out."))
                return
        else:
            parts = []
            for part in _PROPERTY_LINES.split(text):
                key, equals, value = part.partition("=")
                if not equals or not key.strip():
                    if part := part.strip():
                        _warn(
                            row,
                            header,
                            _("“%(part)s” is not name=value: left out.") % {"part": part[:40]},
                        )
                    continue
                parts.append((key, value.strip() or None))
        for key, value in parts:
            if value is None or value == "":
                continue
            try:
                name, checked = normalize_property(key, value)
            except ValidationError as exc:
                _warn(row, header, " ".join(exc.messages) + " " + _("Left out."))
                continue
            row.properties[name] = checked

    # One check per kind of field column: text (stripped, not empty) → the value stored.

    def _email(self, text: str) -> str:
        # normalize_email, with the domain cache.
        email = text.lower()
        self.email_validator(email)
        if len(email) > EMAIL_MAX_LENGTH:  # valid (up to 320) but longer than the column
            raise ValidationError(_("At most 254 characters."))
        return email

    def _phone(self, text: str) -> str:
        return normalize_phone(text, region=self.region)

    def _language(self, text: str) -> str:
        known = self.languages.get(text)
        if known is None:
            try:
                known = normalize_language(text)
            except ValidationError as exc:
                known = exc
            if len(self.languages) < self.MAX_CACHED:
                self.languages[text] = known
        if isinstance(known, ValidationError):
            raise known
        return known

    def _time_zone(self, text: str) -> str:
        if text in self.time_zones:
            return text
        return normalize_time_zone(text)  # raises the usual message


def _name(text: str) -> str:
    if len(text) > NAME_MAX_LENGTH:
        raise ValidationError(_("At most 200 characters."))
    return text


def _external_id(text: str) -> str:
    if len(text) > 128:
        raise ValidationError(_("At most 128 characters."))
    return text


def _phone_problem(row: ParsedRow, errors: list[tuple[str, str]], problem: tuple[str, str]) -> None:
    """A malformed phone beside a valid email: imported without the phone, with a warning;
    without an email the phone was the row's address, and the row is refused."""
    if "email" in row.fields:
        column, reason = problem
        _warn(row, column, _("%(reason)s The phone was left out.") % {"reason": reason})
    else:
        errors.append(problem)


def _warn(row: ParsedRow, column: str, reason: str) -> None:
    if row.warnings is None:
        row.warnings = []
    row.warnings.append((column, reason))


@functools.cache
def _valid_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class _Target:
    """A contact as the matching sees it: an existing one (``pk``) or one to create."""

    __slots__ = (
        "email",
        "external_id",
        "language",
        "name",
        "phone",
        "pk",
        "properties",
        "public_id",
        "time_zone",
    )

    def __init__(  # noqa: PLR0917 (built from a values_list tuple: id, *FIELDS, properties)
        self,
        pk: int | None = None,
        email: str | None = None,
        phone: str | None = None,
        name: str = "",
        language: str = "",
        time_zone: str = "",
        external_id: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> None:
        self.pk = pk
        self.public_id = ""  # a new contact's: given when written (_public_ids), in bulk
        self.email = email
        self.phone = phone
        self.name = name
        self.language = language
        self.time_zone = time_zone
        self.external_id = external_id
        self.properties = properties or {}


_TARGET_COLUMNS = ("id", *FIELDS, "properties")


def _array_literal(values: list[str]) -> str:
    """A PostgreSQL array literal of text values: ``{"a","b \\"quoted\\""}``."""
    joined = '","'.join(values)
    if "\\" not in joined and '"' not in joined:  # the usual keys: nothing to escape
        return '{"' + joined + '"}' if values else "{}"
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


def _keys(rows: list[ParsedRow]) -> tuple[set[str], set[str]]:
    """The external ids and the emails of a chunk's rows."""
    external_ids: set[str] = set()
    emails: set[str] = set()
    for row in rows:
        fields = row.fields
        if "external_id" in fields:
            external_ids.add(fields["external_id"])
        if "email" in fields:
            emails.add(fields["email"])
    return external_ids, emails


def _existing(
    company: Company, external_ids: set[str], emails: set[str], *, raw: bool = False
) -> list[_Target]:
    """The contacts with one of these external ids or emails, in one tenant-scoped query.

    ``raw`` (PostgreSQL) passes the keys as two arrays instead of thousands of parameters.
    """
    if not external_ids and not emails:
        return []
    if raw:
        with connection.cursor() as cursor:
            # One array literal per key list: parsed by the server as one value, where a
            # list parameter would become thousands of ARRAY[...] elements to parse and plan.
            sql = _copy_sql()
            keys = [_array_literal(list(external_ids)), _array_literal(list(emails))]
            cursor.execute(sql["select"], [keys[0], company.pk, keys[1], company.pk])
            found = [(*values[:-1], json.loads(values[-1])) for values in cursor.fetchall()]
            cursor.execute(sql["planner_reset"])
        return [_Target(*values) for values in found]
    match = Q()
    if external_ids:
        match |= Q(external_id__isnull=False, external_id__in=external_ids)
    if emails:
        match |= Q(email__isnull=False, email__in=emails)
    contacts = Contact.objects.for_company(company).filter(match)
    return [_Target(*values) for values in contacts.values_list(*_TARGET_COLUMNS)]


def _match(
    rows: list[ParsedRow], existing: list[_Target], external_ids: set[str], emails: set[str]
) -> tuple[list[_Target], list[_Target], list[tuple[ParsedRow, str, str]]]:
    """Apply the chunk's rows to the contacts they match; returns (new, changed, rejected).

    A row matches by external id, else by email; an email owned by a contact with another
    external id is refused, as is an email another contact already has. A later row for the
    same person updates what the earlier one wrote (one target per contact).
    """
    by_external = {c.external_id: c for c in existing if c.external_id in external_ids}
    by_email = {c.email: c for c in existing if c.email in emails}
    new: dict[int, _Target] = {}
    changed: dict[int, _Target] = {}
    rejected: list[tuple[ParsedRow, str, str]] = []
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
            contact = _new_target(row)
            new[id(contact)] = contact
        else:
            if contact.pk is not None:
                changed[id(contact)] = contact
            _update_target(contact, row, by_email)
        if contact.email:
            by_email[contact.email] = contact
        if contact.external_id:
            by_external[contact.external_id] = contact
    return list(new.values()), list(changed.values()), rejected


def _new_target(row: ParsedRow) -> _Target:
    """A new contact (most rows of a first import), made whole in one call. It takes the
    row's properties as they are: a parsed row holds no None (no "remove") value, and a
    later row for the same contact merges into a new dict."""
    return _Target(properties=row.properties, **row.fields)


def _update_target(contact: _Target, row: ParsedRow, by_email: dict[str, _Target]) -> None:
    """A later row for a contact: its fields over the contact's, its properties merged."""
    old_email = contact.email
    for name, value in row.fields.items():
        setattr(contact, name, value)
    if row.properties:
        contact.properties = merge_properties(contact.properties, row.properties)
    if old_email and old_email != contact.email:
        by_email.pop(old_email, None)


@dataclass(slots=True)
class _ChunkPlan:
    """A chunk matched against the contacts its keys name: what to create, what to change,
    what is refused, and every key it touches (its rows' keys and those the matched
    contacts had), by which a plan made before the chunk ahead of it was written is
    checked (``_ChunkPlan.still_valid``)."""

    new: list[_Target]
    changed: list[_Target]
    rejected: list[tuple[ParsedRow, str, str]]
    external_ids: set[str]  # the rows' keys
    emails: set[str]
    touched_external_ids: set[str]
    touched_emails: set[str]
    # How many existing contacts the rows named; None: not looked up (``_ChunkWriter``
    # expected new people only, and the chunk's unique keys check that when it is written).
    matched: int | None
    copy_rows: _CopyRows | None = None  # the COPY path's rows, made with the plan

    def still_valid(self, before: _ChunkPlan) -> bool:
        """Whether this plan, matched while ``before`` was being written, is what matching
        after it would give: no key of this chunk's rows is one ``before`` wrote, freed or
        matched by. (A contact ``before`` changed was found by a key it had then, which is
        among ``before``'s touched keys; one it created or gave a key has that key among
        its rows' keys.) Another transaction's writes meanwhile are the same race as for a
        plan made in the chunk's own transaction: a unique key taken meanwhile fails the
        chunk, which is matched again and retried."""
        return self.external_ids.isdisjoint(before.touched_external_ids) and self.emails.isdisjoint(
            before.touched_emails
        )


def _plan_chunk(
    *,
    company: Company,
    rows: list[ParsedRow],
    copy: bool = False,
    existing: list[_Target] | None = None,
    looked_up: bool = True,
) -> _ChunkPlan:
    """Look up the contacts a chunk's rows name (unless ``existing`` was looked up
    already, or ``looked_up`` is False: matched as new people) and match the rows to them
    (``_match``)."""
    external_ids, emails = _keys(rows)
    if existing is None:
        existing = _existing(company, external_ids, emails, raw=copy) if looked_up else []
    # Before _match changes them: the keys the matched contacts have now.
    touched_external_ids = external_ids | {c.external_id for c in existing if c.external_id}
    touched_emails = emails | {c.email for c in existing if c.email}
    new, changed, rejected = _match(rows, existing, external_ids, emails)
    for target, public_id in zip(new, new_ordered_public_ids(len(new)), strict=True):
        target.public_id = public_id
    return _ChunkPlan(
        new,
        changed,
        rejected,
        external_ids,
        emails,
        touched_external_ids,
        touched_emails,
        len(existing) if looked_up else None,
    )


def _write_chunk(
    *,
    company: Company,
    rows: list[ParsedRow],
    copy: bool = False,
    plan: _ChunkPlan | None = None,
) -> tuple[int, int, list[tuple[ParsedRow, str, str]]]:
    """Match (unless ``plan`` is given) and write one chunk; returns (created, updated,
    rejected).

    Called inside ``transaction.atomic``. Rejected rows (conflicts with other contacts) are
    returned, not reported, so that a retried chunk does not report them twice. Updates are
    written before inserts: an email an updated contact gives up may go to a new contact of
    the same chunk. ``copy`` writes with PostgreSQL COPY, else with the ORM (any database).
    """
    if plan is None:
        plan = _plan_chunk(company=company, rows=rows, copy=copy)
    now = timezone.now()
    if copy:
        _write_copy(
            company=company, new=plan.new, changed=plan.changed, now=now, rows=plan.copy_rows
        )
    else:
        _write_orm(company=company, new=plan.new, changed=plan.changed, now=now)
    created = len(plan.new)
    return created, len(rows) - len(plan.rejected) - created, plan.rejected


def _write_orm(
    *, company: Company, new: list[_Target], changed: list[_Target], now: dt.datetime
) -> None:
    def contact(target: _Target) -> Contact:
        return Contact(
            id=target.pk,
            company=company,
            public_id=target.public_id,
            **{name: getattr(target, name) for name in FIELDS},
            properties=target.properties,
            created_at=now,
            updated_at=now,
        )

    if changed:
        Contact.objects.for_company(company).bulk_update(
            [contact(t) for t in changed], _UPDATE_FIELDS
        )
    if new:
        Contact.objects.bulk_create([contact(t) for t in new])


# PostgreSQL fast path: the chunk is COPied into a session temp table, then one UPDATE … FROM
# and one INSERT … SELECT write it. ``id`` is NULL for contacts to create; ``n`` keeps the
# file's order (ids grow in file order, as with bulk_create).
_CHUNK_TABLE = "surveys_contact_import_chunk"
_COPY_COLUMNS = ("n", "id", "public_id", *FIELDS)


class _CopyNull(float):
    """NULL in the COPY CSV. The csv module (before Python 3.12's ``QUOTE_NOTNULL``) writes
    ``None`` like ``""`` when quoting strings; a number is left unquoted, so this "number"
    prints as an unquoted empty field, which is COPY's NULL, while every text value,
    ``""`` included, is quoted and stays text."""

    __slots__ = ()

    def __str__(self) -> str:
        return ""

    __repr__ = __str__


_NULL = _CopyNull()


@functools.cache
def _copy_sql() -> dict[str, str]:
    """The fast path's statements. Only identifiers (quoted, from the model) are formatted
    in; every value is a query parameter or comes through COPY."""
    meta = Contact._meta
    quote = connection.ops.quote_name
    table, temp = quote(meta.db_table), _CHUNK_TABLE
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    assignments = ", ".join(f"{column[name]} = t.{name}" for name in FIELDS)
    targets = ", ".join(column[name] for name in [*FIELDS, "properties"])
    sources = ", ".join(FIELDS)
    properties = column["properties"]
    pk, company, public = column["id"], column["company"], column["public_id"]
    created, updated = column["created_at"], column["updated_at"]
    returned = ", ".join(column[n] for n in _TARGET_COLUMNS[:-1])
    lookups = [
        f"SELECT c.* FROM unnest(%s::varchar[]) AS k(v) CROSS JOIN LATERAL (SELECT {returned}, "  # noqa: S608
        f"{column['properties']}::text FROM {table} WHERE {company} = %s "
        f"AND {column[key]} = k.v AND {column[key]} IS NOT NULL LIMIT 1) AS c"
        for key in ("external_id", "email")
    ]
    return {
        # Always by company_id; properties as text (psycopg2 would parse jsonb itself).
        # One probe of a unique index per key, whatever the table's statistics say: a
        # LATERAL subquery per key (LIMIT 1 keeps the planner from turning it back into a
        # join it may run the other way round), with sequential scans and JIT off for this
        # statement ("planner_reset" follows it). Planned freely, an OR of two
        # "= ANY(array)" used neither partial index and the join forms scanned every
        # contact of the company: 110 ms per chunk at 800k contacts against 35 ms of probes,
        # and growing with the table.
        "select": "SET LOCAL enable_seqscan = off; SET LOCAL jit = off; " + " UNION ".join(lookups),
        "planner_reset": "RESET enable_seqscan; RESET jit",
        "prepare": (
            f"CREATE TEMP TABLE IF NOT EXISTS {temp} (n integer, id bigint, "
            "public_id varchar(32), email varchar(254), phone varchar(20), name varchar(200), "
            "language varchar(8), time_zone varchar(64), external_id varchar(128)) "
            # Emptied at each commit too: no chunk's rows linger in the session.
            f"ON COMMIT DELETE ROWS; TRUNCATE {temp}"
        ),
        "copy": f"COPY {temp} ({', '.join(_COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)",
        # The properties come as one JSON array parameter, element n for row n (``->`` on
        # a jsonb array is a lookup by offset): one json.dumps per chunk, not per row.
        # company_id in the WHERE: the ids came from a scoped query; this keeps it so.
        "update": (
            f"UPDATE {table} AS c SET {assignments}, {properties} = (%s::jsonb) -> t.n, "  # noqa: S608
            f"{updated} = %s FROM {temp} AS t "
            f"WHERE t.id IS NOT NULL AND c.{pk} = t.id AND c.{company} = %s"
        ),
        "insert": (
            f"INSERT INTO {table} ({company}, {public}, {targets}, {created}, {updated}) "  # noqa: S608
            f"SELECT %s, public_id, {sources}, (%s::jsonb) -> n, %s, %s FROM {temp} "
            "WHERE id IS NULL ORDER BY n"
        ),
    }


@dataclass(slots=True)
class _CopyRows:
    """A chunk's contacts for the COPY path: changed ones first, then new, numbered from 0
    (``n``): their columns as COPY CSV for the chunk table, their properties as one JSON
    array (element n for contact n)."""

    text: io.StringIO
    properties: str


def _copy_rows(new: list[_Target], changed: list[_Target]) -> _CopyRows:
    buffer = io.StringIO()
    ordered = (*changed, *new)
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(
        (
            n,
            _NULL if t.pk is None else t.pk,
            t.public_id,
            _NULL if t.email is None else t.email,
            _NULL if t.phone is None else t.phone,
            t.name,
            t.language,
            t.time_zone,
            _NULL if t.external_id is None else t.external_id,
        )
        for n, t in enumerate(ordered)
    )
    buffer.seek(0)
    return _CopyRows(buffer, json.dumps([t.properties for t in ordered]))


def _write_copy(
    *,
    company: Company,
    new: list[_Target],
    changed: list[_Target],
    now: dt.datetime,
    rows: _CopyRows | None = None,
) -> None:
    """``rows``: ``_copy_rows(new, changed)`` if they were made already (by the planning
    thread, while the chunk before was written)."""
    if not (new or changed):
        return
    if rows is None:
        rows = _copy_rows(new, changed)
    buffer = rows.text
    buffer.seek(0)  # a plan's text is read once per attempt: from its start each time
    sql = _copy_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql["prepare"])
        with connection.wrap_database_errors:
            # In one piece (psycopg2 reads 8 KB at a time by default): each read takes the
            # interpreter lock again, a wait of up to its switch interval (5 ms) while the
            # parsing thread holds it.
            cursor.cursor.copy_expert(sql["copy"], buffer, size=len(buffer.getvalue()) + 1)
        if changed:
            cursor.execute(sql["update"], [rows.properties, now, company.pk])
        if new:
            cursor.execute(sql["insert"], [company.pk, rows.properties, now, now])


def copy_available() -> bool:
    """Whether the COPY fast path can run: PostgreSQL through psycopg2 (``copy_expert``)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy_expert")


class _ErrorReport:
    """The rejected rows, and the imported rows with a warning, as CSV (original cells +
    line + reason). A warning's reason starts with "Warning:", so the report, fixed and
    imported again, also completes the warned contacts."""

    def __init__(self, headers: list[str]) -> None:
        self.headers = headers
        # Cells come from the uploaded file: a formula in one must not run where the report
        # is opened (the re-import takes the ' off again).
        self.csv = SpooledCsvReport([*headers, REPORT_LINE, REPORT_ERROR])
        self.kept: list[dict[str, Any]] = []

    def add(
        self, row: ParsedRow, problems: list[tuple[str, str]], *, warning: bool = False
    ) -> None:
        cells = [_cell_text(c) for c in row.cells[: len(self.headers)]]
        cells += [""] * (len(self.headers) - len(cells))
        reason = "; ".join(f"{column}: {text}" for column, text in problems)
        if warning:
            reason = _("Warning: %(reason)s") % {"reason": reason}
        self.csv.writerow([*cells, row.line, reason])
        for column, text in problems:
            if len(self.kept) < ERRORS_KEPT:
                kept: dict[str, Any] = {"line": row.line, "column": column, "reason": text}
                if warning:
                    kept["warning"] = True
                self.kept.append(kept)

    def save_to(self, contact_import: ContactImport) -> None:
        self.csv.save_to(contact_import.error_report)


def import_rows(
    *,
    company: Company,
    headers: list[str],
    mapping: dict[str, str],
    rows: Iterable[list[Any]],
    report: _ErrorReport,
    first_line: int = 2,
    chunk_size: int | None = None,
    on_chunk: Any = None,
    copy: bool | None = None,
    max_rows: int | None = None,
) -> ImportCounts:
    """Validate and write ``rows`` (cells in header order) chunk by chunk.

    ``rows`` may be any iterator: it is consumed lazily, one chunk at a time. ``copy``
    (default: when available) writes chunks with PostgreSQL COPY instead of the ORM; both
    give the same contacts. ``chunk_size`` defaults to ``COPY_CHUNK_SIZE`` or ``CHUNK_SIZE``.
    """
    if copy is None:
        copy = copy_available()
    if chunk_size is None:
        chunk_size = COPY_CHUNK_SIZE if copy else CHUNK_SIZE
    parser = _RowParser(headers, mapping, contact_phone_region(company=company))
    counts = ImportCounts()

    def settle(written: _Written, problems: list[_Problem]) -> None:
        created, updated, rejected = written
        counts.created += created
        counts.updated += updated
        counts.invalid += len(rejected)
        if rejected:
            # A warned row refused when written is an error row, its warnings with it.
            refused = {id(row) for row, _column, _reason in rejected}
            problems = [p for p in problems if not (p[2] and id(p[0]) in refused)]
            problems += [
                (row, [*(row.warnings or ()), (column, reason)], False)
                for row, column, reason in rejected
            ]
        counts.warned += sum(1 for p in problems if p[2])
        for row, row_problems, warning in sorted(problems, key=lambda item: item[0].line):
            report.add(row, row_problems, warning=warning)

    overlap = copy and not connection.in_atomic_block
    write = functools.partial(_write_planned, company, copy, on_chunk)
    ahead = (company, copy) if overlap else None
    # The writer and look-up threads wait on PostgreSQL, then for the interpreter lock this
    # thread holds while parsing: up to the switch interval (5 ms) at each statement.
    switching = _short_switch_interval() if overlap else contextlib.nullcontext()
    with _young_collections_only(), switching, _ChunkWriter(write, ahead, settle) as writer:
        chunk: list[ParsedRow] = []
        problems: list[_Problem] = []
        limit = MAX_ROWS if max_rows is None else max_rows
        for row, found in _parse_rows(parser, rows, first_line, counts, limit):
            counts.rows += 1
            row_problems = found
            if not found and not row.fields and not row.properties:
                row_problems = [("", _("Nothing to import in this row."))]
            if row_problems:
                counts.invalid += 1
                # Everything wrong with the row at once, what would only have been warned
                # about included: one fix of the report, not two.
                problems.append((row, [*(row.warnings or ()), *row_problems], False))
                continue
            if row.warnings:
                problems.append((row, row.warnings, True))
            chunk.append(row)
            if len(chunk) >= chunk_size:
                writer.submit(chunk, problems, counts)
                chunk, problems = [], []
        writer.submit(chunk, problems, counts)
        writer.finish(counts)
    return counts


def _look_up_ahead(company: Company, copy: bool, rows: list[ParsedRow]) -> list[_Target]:
    """The contacts a chunk's rows name, looked up on the look-up thread's own connection
    while the chunk before is being written (in a transaction of its own: the lookup's
    SET LOCAL needs one)."""
    external_ids, emails = _keys(rows)
    with transaction.atomic():
        return _existing(company, external_ids, emails, raw=copy)


def _plan_ahead(
    company: Company,
    copy: bool,
    rows: list[ParsedRow],
    existing: list[_Target],
    *,
    looked_up: bool = True,
) -> _ChunkPlan:
    """A chunk's plan from the contacts looked up ahead (or, not ``looked_up``, as new
    people), with its COPY text."""
    plan = _plan_chunk(
        company=company, rows=rows, copy=copy, existing=existing, looked_up=looked_up
    )
    if copy:
        plan.copy_rows = _copy_rows(plan.new, plan.changed)
    return plan


def _write_planned(  # noqa: PLR0917 (a partial of the first three: import_rows)
    company: Company,
    copy: bool,
    on_chunk: Any,
    rows: list[ParsedRow],
    before: ImportCounts,
    plan: _ChunkPlan | None,
) -> tuple[_Written, _ChunkPlan]:
    """Write a chunk in one transaction, with its plan, or matched there (``plan`` None);
    returns what it wrote and the plan it was written with."""
    failures = 0
    while True:
        try:
            with transaction.atomic():
                if plan is None:
                    plan = _plan_chunk(company=company, rows=rows, copy=copy)
                created, updated, rejected = _write_chunk(
                    company=company, rows=rows, copy=copy, plan=plan
                )
                if on_chunk is not None:
                    on_chunk(before, created, updated, len(rejected))
            return (created, updated, rejected), plan
        except IntegrityError:
            # The chunk rolled back whole; it is matched again against what is there now.
            # A plan that was not looked up named someone who exists (an earlier chunk of
            # the file, another writer's contact): the unique keys said so, as expected.
            # Otherwise another writer took an email / external id of this chunk meanwhile,
            # which may happen once more, not twice.
            if plan is None or plan.matched is not None:
                failures += 1
                if failures == 2:
                    raise
            plan = None


def _close_connection() -> None:
    """Close this thread's database connection (``connection`` is per thread: the writer
    thread's own goes with it)."""
    connection.close()


# created, updated, rejected (row, column, reason)
_Written = tuple[int, int, list[tuple[ParsedRow, str, str]]]
# A row for the report: (row, [(column, reason)], whether it was imported with a warning).
_Problem = tuple[ParsedRow, list[tuple[str, str]], bool]


@dataclass
class _Deferred:
    """A parsed chunk whose existing contacts are being looked up (``lookup``), with what
    its write needs: its problems, and the counts when it was parsed (``parsed``) beside
    the rows rejected by then (``rejected``): its progress counts what was parsed up to
    it, not the chunk parsed after it."""

    rows: list[ParsedRow]
    problems: list[_Problem]
    lookup: Future[list[_Target]]
    parsed: ImportCounts
    rejected: int
    ahead: bool  # a chunk was being written when the lookup started
    looked_up: bool  # False: taken for new people, not looked up (``_ChunkWriter``)


# Seconds (``sys.setswitchinterval``) while an import's threads run: see _ChunkWriter.
PIPELINE_SWITCH_INTERVAL = 0.0002


class _WhileImporting:
    """A setting of the whole process held while imports run (a threaded worker, a test's
    live server may run several at once): set by the first of overlapping imports, given
    back by the last, whatever order they end in."""

    def __init__(self, take: Callable[[], Any], give_back: Callable[[Any], None]) -> None:
        self.take, self.give_back = take, give_back
        self.holders = 0
        self.before: Any = None
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self.lock:
            if self.holders == 0:
                self.before = self.take()
            self.holders += 1
        try:
            yield
        finally:
            with self.lock:
                self.holders -= 1
                if self.holders == 0:
                    self.give_back(self.before)


def _shorten_switch_interval() -> float:
    before = sys.getswitchinterval()
    sys.setswitchinterval(PIPELINE_SWITCH_INTERVAL)
    return before


def _no_full_collections() -> tuple[int, ...]:
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], _NEVER)
    return before


def _restore_thresholds(before: tuple[int, ...]) -> None:
    gc.set_threshold(*before)


_NEVER = 2**31 - 1  # a count of young collections that is never reached
_SWITCH_INTERVAL = _WhileImporting(_shorten_switch_interval, sys.setswitchinterval)
_YOUNG_COLLECTIONS_ONLY = _WhileImporting(_no_full_collections, _restore_thresholds)


def _short_switch_interval() -> contextlib.AbstractContextManager[None]:
    """The switch interval while the pipeline runs (see _ChunkWriter)."""
    return _SWITCH_INTERVAL.held()


class _ChunkWriter:
    """Writes chunks in order, each after the one before it has settled.

    With ``ahead`` (PostgreSQL in autocommit: a worker's import) the work is a pipeline of
    three threads, each with its own connection: while chunk n is written (writer thread),
    chunk n+1's existing contacts are looked up (look-up thread) and chunk n+2 is parsed
    (this thread), which then matches chunk n+1 and makes its COPY text. So the writer
    thread's work is the database's (COPY, index upkeep, commit) with little Python, and
    this thread never waits for a lookup. Chunk n+1 is looked up before chunk n has
    committed: that plan is kept if chunk n touched none of its keys
    (``_ChunkPlan.still_valid``: almost always, as a file rarely names one person in two
    neighbouring chunks), else the chunk is matched again in its own transaction. While
    the last chunk written named nobody who existed, the next is not looked up at all but
    taken for new people (``expect_new``): the contacts table's unique keys check that
    when it is written, and a chunk that does name someone (an earlier chunk's person,
    another writer's contact) rolls back there and is matched again with a lookup, and
    lookups resume. A first import of a million new people then costs no lookup. Without
    ``ahead`` (SQLite, or inside a transaction such as a test's) each chunk is matched and
    written in one transaction where it is submitted. Either way a chunk's results are
    settled (counted, reported) before the next chunk is written, so a failed chunk stops
    the import with every chunk before it complete.
    """

    def __init__(self, write: Any, ahead: tuple[Company, bool] | None, settle: Any) -> None:
        self.write = write
        self.ahead = ahead
        self.settle = settle
        # The threads' connections see what the submitting task sees (row-level security).
        scope = rls.current()
        self.pool = (
            ThreadPoolExecutor(max_workers=1, initializer=rls.activate, initargs=(scope,))
            if ahead is not None
            else None
        )
        self.lookups = (
            ThreadPoolExecutor(max_workers=1, initializer=rls.activate, initargs=(scope,))
            if ahead is not None
            else None
        )
        self.pending: tuple[Future[tuple[_Written, _ChunkPlan]], list[_Problem]] | None = None
        self.deferred: _Deferred | None = None
        # The plan the last settled chunk was written with: what a plan made while it was
        # being written is checked against; the rows rejected when written, so far.
        self.written: _ChunkPlan | None = None
        self.rejected = 0
        # Whether the next chunk is taken for new people without a lookup: while the last
        # chunk written named nobody who existed (a first import, a file of new customers).
        self.expect_new = False

    def __enter__(self) -> _ChunkWriter:
        return self

    def submit(self, rows: list[ParsedRow], problems: list[_Problem], counts: ImportCounts) -> None:
        if self.pool is None or self.lookups is None or self.ahead is None:
            if rows:
                self.settle(self.write(rows, replace(counts), None)[0], problems)
            else:
                self.settle((0, 0, []), problems)
            return
        self._write_deferred(counts)
        if not rows:
            self.wait()
            self.settle((0, 0, []), problems)
            return
        company, copy = self.ahead
        # The chunk before is being written, the one before that has committed.
        looked_up = not self.expect_new
        if looked_up:
            lookup = self.lookups.submit(_look_up_ahead, company, copy, rows)
        else:
            lookup = Future()
            lookup.set_result([])
        self.deferred = _Deferred(
            rows,
            problems,
            lookup,
            replace(counts),
            self.rejected,
            self.pending is not None,
            looked_up,
        )

    def _write_deferred(self, counts: ImportCounts) -> None:
        """Match the chunk looked up ahead and hand it to the writer thread, once the chunk
        before it has settled."""
        deferred, self.deferred = self.deferred, None
        if deferred is None or self.pool is None or self.ahead is None:
            return
        company, copy = self.ahead
        early = _plan_ahead(
            company, copy, deferred.rows, deferred.lookup.result(), looked_up=deferred.looked_up
        )
        self.wait()  # the chunk before settles first: its rows count for this one's progress
        # Matched again in its transaction, after the chunk before, if that one touched it.
        valid = not deferred.ahead or (self.written is not None and early.still_valid(self.written))
        before = replace(
            counts,
            rows=deferred.parsed.rows,
            invalid=deferred.parsed.invalid + self.rejected - deferred.rejected,
        )
        future = self.pool.submit(self.write, deferred.rows, before, early if valid else None)
        self.pending = (future, deferred.problems)

    def finish(self, counts: ImportCounts) -> None:
        """Write the chunk still looked up ahead, and wait for every chunk to settle."""
        self._write_deferred(counts)
        self.wait()

    def wait(self) -> None:
        if self.pending is not None:
            future, problems = self.pending
            self.pending = None
            written, self.written = future.result()
            self.rejected += len(written[2])
            # The rows named nobody who exists (or were taken for new people, rightly):
            # the next chunks probably don't either.
            self.expect_new = not self.written.matched
            self.settle(written, problems)

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is None or self.lookups is None:
            return
        try:
            if exc_info[0] is None:
                self.wait()
        finally:
            if self.deferred is not None:
                self.deferred.lookup.exception()  # not left running on a closed connection
            for pool in (self.pool, self.lookups):
                pool.submit(_close_connection).result()
                pool.shutdown()


def _young_collections_only() -> contextlib.AbstractContextManager[None]:
    """No full passes of the garbage collector while an import runs; the young ones go on.

    An import allocates tens of millions of objects, freed by reference counting, and holds
    a few chunks of them at a time (parsed, planned, written). The collector's full passes
    walked every object alive outside the young generations, those chunks included, again
    and again: 2.9 s of a million-row import's 21 s of parsing (54 passes; the young passes
    took 1.8 s), measured with ``gc.callbacks``. The young passes still free what dies in a
    cycle (a ``ValidationError`` refers to itself, with its traceback), as it dies; cycles
    that live long enough to leave the young generations (a retried chunk's exception) are
    freed by the next full pass after the import.
    """
    return _YOUNG_COLLECTIONS_ONLY.held()


def _parse_rows(
    parser: _RowParser,
    rows: Iterable[list[Any]],
    first_line: int,
    counts: ImportCounts,
    max_rows: int,
) -> Iterator[tuple[ParsedRow, list[tuple[str, str]]]]:
    """The non-blank rows of the first ``max_rows`` lines, parsed: (row, problems). A row
    keeps no more cells than the header has (a line of a million empty cells costs one
    row's worth). Past ``max_rows`` lines it stops and notes where (``counts.cut_at``)."""
    line = first_line - 1
    last = first_line + max_rows - 1
    width = len(parser.headers)
    for cells in rows:
        line += 1
        if line > last:
            counts.cut_at = line
            return
        if len(cells) > width:
            del cells[width:]
        if _blank(cells):
            continue
        yield parser.parse(line, cells)


def _blank(cells: list[Any]) -> bool:
    try:
        return not any(map(str.strip, cells))  # CSV: every cell is text
    except TypeError:  # XLSX: numbers, dates, None
        return not any(c is not None and str(c).strip() for c in cells)


# --- The import as a whole ---------------------------------------------------------------------


def contact_import_create(
    *,
    company: Company,
    upload: UploadedFile,
    created_by: User | None = None,
    mapping: dict[str, Any] | None = None,
    start: bool = False,
) -> ContactImport:
    """Store an uploaded file and wake a worker to read it; nothing of it is parsed here.

    Only what is told without reading the file is checked (raises ``ValidationError`` keyed
    ``file``: the extension, the size, an empty file, an .xlsx that is not a zip). The worker
    reads the header, suggests a mapping and reads sample values (status ``reading`` →
    ``pending``); with ``start`` it goes on to import with ``mapping`` (None: the
    suggestion), whose shape is checked here (``ValidationError`` keyed ``mapping``).
    """
    file_name = (upload.name or "contacts.csv").rsplit("/", 1)[-1][:255]
    try:
        fmt = file_format(file_name)
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise ImportFileError(
                _("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // 2**20}
            )
        upload.seek(0)
        magic = upload.read(4)
        if not magic:
            raise ImportFileError(_("The file is empty: the first row must name the columns."))
        if fmt == "xlsx" and magic != b"PK\x03\x04":
            raise ImportFileError(_("The file is not a valid .xlsx workbook."))
    except ImportFileError as exc:
        raise ValidationError({"file": [str(exc)]}) from exc
    if mapping is not None:
        check_mapping_shape(mapping)
    upload.seek(0)
    contact_import = ContactImport(
        company=company,
        file_name=file_name,
        status=ImportStatus.READING,
        mapping=mapping or {},
        auto_start=start,
        created_by=created_by,
        queued_at=timezone.now(),
    )
    contact_import.file.save(file_name, upload, save=False)
    contact_import.save()
    wake(IMPORT_TASK, company.pk, contact_import.pk)
    return contact_import


def contact_import_samples(*, contact_import: ContactImport) -> dict[str, list[str]]:
    """Header → the first few values of that column, as the worker read them with the
    header (empty before that: the mapping screen works without them)."""
    return dict(contact_import.samples or {})


def contact_import_start(
    *, company: Company, contact_import: ContactImport, mapping: dict[str, Any] | None = None
) -> ContactImport:
    """Fix the mapping (default: the suggestion) and run the import in the task queue.

    An import whose file is still being read starts as soon as it is read (its mapping is
    then checked against the header by the worker; a bad one fails the import). Raises
    ``ValidationError`` for a bad mapping or an import that already started.
    """
    if contact_import.company_id != company.pk:
        raise ValueError("import belongs to another company")
    imports = ContactImport.objects.for_company(company).filter(pk=contact_import.pk)
    if mapping is not None:
        check_mapping_shape(mapping)
    if imports.filter(status=ImportStatus.READING).update(mapping=mapping or {}, auto_start=True):
        contact_import.mapping, contact_import.auto_start = mapping or {}, True
        # Its worker may be on the way already; a second message finds it claimed.
        wake(IMPORT_TASK, company.pk, contact_import.pk)
        return contact_import
    contact_import.refresh_from_db()
    final = validate_mapping(
        contact_import.headers, contact_import.mapping if mapping is None else mapping
    )
    started = imports.filter(status=ImportStatus.PENDING).update(
        mapping=final, status=ImportStatus.RUNNING, queued_at=timezone.now()
    )
    if not started:
        raise ValidationError(_("This import has already started."))
    contact_import.mapping = final
    contact_import.status = ImportStatus.RUNNING
    wake(IMPORT_TASK, company.pk, contact_import.pk)
    return contact_import


IMPORT_TASK = "surveys.import_contacts"


def contact_import_run(*, company: Company, import_pk: int) -> ContactImport | None:
    """The task's body: read a stored file's header (status ``reading``), or import it
    (``running``). Claims the import first: a redelivered task whose import another run
    already claimed does nothing. Returns the import, or None if not ours."""
    imports = ContactImport.objects.for_company(company).filter(pk=import_pk)
    claimed = imports.filter(
        status__in=(ImportStatus.READING, ImportStatus.RUNNING), started_at=None
    ).update(started_at=timezone.now())
    if not claimed:
        return None
    contact_import = imports.get()
    if contact_import.status == ImportStatus.READING:
        contact_import = _read_head(company, contact_import)
        if contact_import.status != ImportStatus.RUNNING:
            return contact_import
    return _import_file(company, contact_import)


def _read_head(company: Company, contact_import: ContactImport) -> ContactImport:
    """Read the header and samples of a claimed import; leave it ``pending`` (the mapping
    screen), ``running`` (``auto_start``: claimed, imported next by the same run) or
    ``failed`` (the file or the mapping asked for is refused)."""
    imports = ContactImport.objects.for_company(company).filter(pk=contact_import.pk)
    try:
        with contact_import.file.open("rb") as binary:
            head = read_head(binary, file_format(contact_import.file_name))
    except (ImportFileError, OSError) as exc:
        logger.info("contact import %s refused: %s", contact_import.public_id, exc)
        _fail(contact_import, str(exc))
        return contact_import
    except Exception:
        # Whatever else a hostile file makes a reader raise: the import says so and ends,
        # rather than staying claimed and "reading" for ever.
        logger.exception("contact import %s: reading the file failed", contact_import.public_id)
        _fail(contact_import, _("The file could not be read."))
        return contact_import
    suggestion = suggest_mapping(head.headers)
    # Waiting for the mapping, unless it was given (meanwhile, too: then auto_start is set).
    # (Headers and samples are storable text: read_head checked them.)
    if imports.filter(status=ImportStatus.READING, auto_start=False).update(
        status=ImportStatus.PENDING,
        headers=head.headers,
        mapping=suggestion,
        samples=head.samples,
        started_at=None,
    ):
        contact_import.refresh_from_db()
        return contact_import
    contact_import.refresh_from_db()
    try:
        final = validate_mapping(head.headers, contact_import.mapping or suggestion)
    except ValidationError as exc:
        contact_import.headers, contact_import.samples = head.headers, head.samples
        _fail(contact_import, " ".join(exc.messages))
        return contact_import
    imports.filter(status=ImportStatus.READING).update(
        status=ImportStatus.RUNNING, headers=head.headers, mapping=final, samples=head.samples
    )
    contact_import.refresh_from_db()
    return contact_import


def _fail(contact_import: ContactImport, reason: str) -> None:
    contact_import.status = ImportStatus.FAILED
    contact_import.failure = reason[:500]
    contact_import.finished_at = timezone.now()
    contact_import.save()


def _import_file(company: Company, contact_import: ContactImport) -> ContactImport:
    """Import a claimed, running import's file, chunk by chunk, with progress."""
    report = _ErrorReport(contact_import.headers)
    imports = ContactImport.objects.for_company(company).filter(pk=contact_import.pk)

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
            header_line = 0
            for cells in rows:  # up to the header row (the first non-blank one)
                header_line += 1
                if not _blank(cells):
                    break
            counts = import_rows(
                company=company,
                headers=contact_import.headers,
                mapping=contact_import.mapping,
                rows=rows,
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
        if counts.cut_at:
            contact_import.status = ImportStatus.FAILED
            contact_import.failure = _(
                "The file has more than %(max)d rows: lines %(first)d to %(last)d were "
                "imported; import the rest as another file."
            ) % {"max": MAX_ROWS, "first": header_line + 1, "last": counts.cut_at - 1}
        contact_import.rows_total = counts.rows
        contact_import.created_count = counts.created
        contact_import.updated_count = counts.updated
        contact_import.invalid_count = counts.invalid
    contact_import.errors = report.kept
    report.save_to(contact_import)
    contact_import.finished_at = timezone.now()
    contact_import.save()
    return contact_import
