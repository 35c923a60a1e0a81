"""The one rule for every cell the product writes into a CSV or XLSX file people open.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (tab
and carriage return too, in some of them): a comment or an imported cell such as
``=HYPERLINK("https://evil.example", "click")`` must not run in a manager's Excel (CSV or
formula injection, OWASP). Such text is written with a leading ``'``, which spreadsheets take
as "this is text" and do not show. Plain numbers (``-12.5``, ``+77011234567``) are data, not
formulas, and stay as they are, so that machines read them back as numbers.

Every writer calls ``spreadsheet_row`` (response exports, the dashboard's trend, the contact
import's error report); a file the product reads back (a fixed error report imported again)
loses the marker through ``spreadsheet_unescape``. Not for files only machines read (the
COPY buffer of the contact import writes data for PostgreSQL, not for people).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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
