"""Responses as CSV or XLSX, streamed: a million rows never sit in memory.

Rows come from one server-side cursor (``QuerySet.iterator``) in chunks of ``CHUNK_SIZE`` and
are written out as they arrive: the CSV straight into the HTTP response, the XLSX through
openpyxl's write-only workbook into a temporary file that is then streamed. Times are in the
company's time zone. Respondents of anonymous (eNPS) surveys are never exported: their
identity columns stay empty and the properties snapshot is left out.

Cells a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, tab, CR at the start)
are prefixed with ``'`` (``companies.spreadsheets``, the rule every file the product writes
follows): comments come from the public, and a comment like ``=HYPERLINK(...)`` must not run
in a manager's Excel (CSV/formula injection). Headings too.
"""

from __future__ import annotations

import csv
import json
import tempfile
import zoneinfo
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from openpyxl import Workbook

from companies.models import Company
from companies.spreadsheets import spreadsheet_row
from responses.models import Response

CHUNK_SIZE = 2000
# Columns, in order: (heading, value-list field). Identity fields are blanked for anonymous
# surveys (see _row).
_FIELDS = (
    "public_id",
    "created_at",
    "updated_at",
    "survey__name",
    "score",
    "category",
    "comment",
    "channel",
    "language",
    "contact__email",
    "contact__phone",
    "contact__name",
    "contact__external_id",
    "extra_answers",
    "contact_properties",
    "survey__anonymous",
)
_IDENTITY = slice(9, 13)


def headings() -> list[str]:
    return [
        _("Response id"),
        _("Answered at"),
        _("Updated at"),
        _("Survey"),
        _("Score"),
        _("Category"),
        _("Comment"),
        _("Channel"),
        _("Language"),
        _("Email"),
        _("Phone"),
        pgettext("person", "Name"),
        _("External id"),
        _("Extra answers"),
        _("Contact properties"),
    ]


def _row(values: tuple[Any, ...], zone: zoneinfo.ZoneInfo) -> list[Any]:
    row = list(values[:-1])
    anonymous = values[-1]
    row[1] = row[1].astimezone(zone).replace(tzinfo=None)
    row[2] = row[2].astimezone(zone).replace(tzinfo=None)
    if anonymous:
        row[_IDENTITY] = [""] * (_IDENTITY.stop - _IDENTITY.start)
        row[14] = {}
    row[_IDENTITY] = [value or "" for value in row[_IDENTITY]]
    row[13] = json.dumps(row[13], ensure_ascii=False) if row[13] else ""
    row[14] = json.dumps(row[14], ensure_ascii=False) if row[14] else ""
    return spreadsheet_row(row)


def export_rows(*, company: Company, responses: QuerySet[Response]) -> Iterator[list[Any]]:
    """The rows of ``responses`` (the company's, already filtered), newest first; datetimes
    naive in the company's time zone. One query, read in chunks."""
    if responses.model is not Response:
        raise TypeError("expected a queryset of responses")
    zone = zoneinfo.ZoneInfo(company.time_zone or "UTC")
    values = responses.values_list(*_FIELDS).order_by("-created_at", "-id")
    for record in values.iterator(chunk_size=CHUNK_SIZE):
        yield _row(record, zone)


class _Echo:
    """A file-like object that hands back what csv.writer writes (for streaming)."""

    def write(self, value: str) -> str:
        return value


def csv_stream(rows: Iterable[list[Any]]) -> Iterator[str]:
    """The CSV text, a line at a time, headings first (UTF-8 BOM: Excel reads it as UTF-8)."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(spreadsheet_row(headings()))
    for row in rows:
        yield writer.writerow(
            [value.isoformat(sep=" ") if isinstance(value, datetime) else value for value in row]
        )


def xlsx_file(rows: Iterable[list[Any]]) -> IO[bytes]:
    """A temporary file holding the workbook, positioned at its start; the caller closes it.

    openpyxl's write-only mode keeps only the current row in memory.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Responses"))
    sheet.append(spreadsheet_row(headings()))
    for row in rows:
        sheet.append(row)
    output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the response that streams it)
    workbook.save(output)
    output.seek(0)
    return output
