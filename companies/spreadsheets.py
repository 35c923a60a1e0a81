"""The one rule for every cell the product writes into a CSV or XLSX file people open.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (tab
and carriage return too, in some of them): a comment or an imported cell such as
``=HYPERLINK("https://evil.example", "click")`` must not run in a manager's Excel (CSV or
formula injection, OWASP). Such text is written with a leading ``'``, which spreadsheets take
as "this is text" and do not show. Plain numbers (``-12.5``, ``+77011234567``) are data, not
formulas, and stay as they are, so that machines read them back as numbers.

Every writer calls ``spreadsheet_row`` (response exports, the dashboard's trend, the import
error reports, which ``SpooledCsvReport`` writes); a file the product reads back (a fixed
error report imported again) loses the marker through ``spreadsheet_unescape``. Not for
files only machines read (the COPY buffer of the contact import writes data for PostgreSQL,
not for people).
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Iterable
from typing import Any

from django.core.files import File
from django.db.models.fields.files import FieldFile

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """``value``, with a leading ``'`` if it is text a spreadsheet would run as a formula."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through ``spreadsheet_safe``."""
    return [spreadsheet_safe(value) for value in values]


def spreadsheet_unescape(text: str) -> str:
    """The text ``spreadsheet_safe`` was given (the marker of an escaped formula removed)."""
    if text.startswith("'") and text[1:2] and text[1] in FORMULA_START:
        return text[1:]
    return text


class SpooledCsvReport:
    """A CSV report people open (an import's rejected rows), spooled to a temporary file
    while rows arrive and saved once into a ``FileField``: UTF-8 with a byte-order mark (so
    Excel reads Cyrillic), every cell through ``spreadsheet_row``. Nothing is written, and
    ``save_to`` does nothing, until the first row."""

    def __init__(self, header: Iterable[Any]) -> None:
        self.header = list(header)
        self.file: Any = None
        self.writer: Any = None

    def writerow(self, values: Iterable[Any]) -> None:
        if self.file is None:
            # Closed by save_to (the report lives across many chunks of an import).
            self.file = tempfile.TemporaryFile(  # noqa: SIM115
                mode="w+", encoding="utf-8", newline=""
            )
            self.writer = csv.writer(self.file)
            self.writer.writerow(spreadsheet_row(self.header))
        self.writer.writerow(spreadsheet_row(values))

    def save_to(self, field: FieldFile, name: str = "errors.csv") -> None:
        """Store the report in ``field`` (the model is saved by the caller)."""
        if self.file is None:
            return
        self.file.seek(0)
        with tempfile.TemporaryFile() as binary:
            binary.write("\ufeff".encode())
            # FileField storage wants bytes; copy in blocks (the report may be large).
            while block := self.file.read(64 * 1024):
                binary.write(block.encode("utf-8"))
            binary.seek(0)
            field.save(name, File(binary), save=False)
        self.file.close()
        self.file = None
