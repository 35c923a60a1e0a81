"""SpooledCsvReport: the import error reports' one writer."""

from __future__ import annotations

from typing import Any

from companies.spreadsheets import SpooledCsvReport


class _Field:
    """What SpooledCsvReport.save_to uses of a FieldFile: ``save(name, content, save=)``."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, bytes, bool]] = []

    def save(self, name: str, content: Any, save: bool = True) -> None:
        self.saved.append((name, content.read(), save))


def test_rows_are_escaped_with_a_byte_order_mark_and_saved_once() -> None:
    report = SpooledCsvReport(["=name", "error"])
    report.writerow(['=HYPERLINK("https://evil.example")', "-12.5"])
    report.writerow(["Әлия", "@x"])
    field = _Field()
    report.save_to(field)  # type: ignore[arg-type]
    [(name, content, save)] = field.saved
    assert (name, save) == ("errors.csv", False)
    text = content.decode("utf-8")
    assert text.startswith("\ufeff'=name,error\r\n")
    assert "'=HYPERLINK" in text
    assert ",-12.5\r\n" in text  # a plain number stays a number
    assert "Әлия,'@x\r\n" in text


def test_nothing_is_saved_without_a_row() -> None:
    report = SpooledCsvReport(["a"])
    field = _Field()
    report.save_to(field)  # type: ignore[arg-type]
    assert field.saved == []
