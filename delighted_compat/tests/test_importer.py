"""The Delighted importer: sample exports land at their dates, in contacts and suppressions,
and a second run changes nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from companies.models import Company
from dashboards.models import Rollup
from dashboards.selectors import metrics_for
from dashboards.services import rollup_fold
from delighted_compat.importer import (
    PROPERTY_PREFIX,
    detect_kind,
    parse_time,
    suggest_mapping,
)
from delighted_compat.models import DelightedImport, DelightedResponse, ExportKind
from notifications.models import Suppression
from responses.models import Response
from surveys.models import Contact, Survey

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
FILES = [
    DATA / "delighted-responses.csv",
    DATA / "delighted-people.csv",
    DATA / "delighted-unsubscribes.csv",
    DATA / "delighted-bounces.csv",
]
ZONE = "Asia/Almaty"  # UTC+5: answers late in the UTC evening belong to the next local day


@pytest.fixture
def almaty(company: Company) -> Company:
    company.time_zone = ZONE
    company.save(update_fields=["time_zone"])
    return company


def run(company: Company, *files: Path | str) -> str:
    out = io.StringIO()
    call_command("import_delighted", "--company", company.slug, *map(str, files), stdout=out)
    return out.getvalue()


def snapshot(company: Company) -> dict[str, Any]:
    return {
        "responses": sorted(
            Response.objects.for_company(company).values_list(
                "public_id", "score", "comment", "created_at", "updated_at", "contact_id"
            )
        ),
        "contacts": sorted(
            Contact.objects.for_company(company).values_list(
                "pk", "email", "phone", "name", "properties", "updated_at"
            )
        ),
        "suppressions": sorted(
            Suppression.objects.for_company(company).values_list("channel", "address", "reason")
        ),
        "surveys": Survey.objects.for_company(company).count(),
    }


def test_headers_are_matched_by_meaning_and_files_told_apart() -> None:
    headers = ["Response ID", "SCORE", "comment", "Response date", "Property: Plan", "Region"]
    assert detect_kind(headers) == ExportKind.RESPONSES
    mapping, unknown = suggest_mapping(headers, ExportKind.RESPONSES)
    assert mapping == {
        "Response ID": "response_id",
        "SCORE": "score",
        "comment": "comment",
        "Response date": "created_at",
        "Property: Plan": PROPERTY_PREFIX + "Plan",
        "Region": PROPERTY_PREFIX + "Region",
    }
    assert unknown == ["Region"]
    assert detect_kind(["Person ID", "Email", "Unsubscribed At"]) == ExportKind.UNSUBSCRIBES
    assert detect_kind(["email", "bounced_at"]) == ExportKind.BOUNCES
    assert detect_kind(["Email", "Name", "Property: City"]) == ExportKind.PEOPLE
    assert detect_kind(["Foo", "Bar"]) == ""


def test_times_read_as_delighted_wrote_them() -> None:
    import zoneinfo

    zone = zoneinfo.ZoneInfo(ZONE)
    expected = datetime(2026, 1, 5, 20, 30, tzinfo=UTC)
    for text in (
        "1767645000",
        "2026-01-05T20:30:00Z",
        "2026-01-05 20:30:00 UTC",
        "2026-01-05 12:30:00 -0800",
        "2026-01-06T01:30:00+05:00",
        "2026-01-06 01:30",  # no offset: the company's zone
        "01/06/2026 01:30",
    ):
        assert parse_time(text, zone) == expected, text
    with pytest.raises(ValueError, match="вчера"):
        parse_time("вчера", zone)


def test_import_lands_in_the_dashboard_at_the_original_dates_and_twice_is_safe(
    almaty: Company,
) -> None:
    company = almaty
    output = run(company, *FILES)
    assert "delighted-responses.csv (responses): 17 rows, 15 created" in output
    assert "2 invalid" in output
    survey = Survey.objects.for_company(company).get(name="Delighted")

    rollup_fold()
    monthly = metrics_for(
        company=company,
        survey=survey,
        since=date(2026, 1, 1),
        until=date(2026, 6, 30),
        trend="month",
    )
    assert monthly["trend"] is not None
    by_month = {p["start"]: (p["response_count"], p["nps"]) for p in monthly["trend"]}
    # Counted in Almaty's months: 1006 (28 Feb 22:15 UTC) is March, 1009 (31 Mar 19:05 UTC)
    # is April, 1017 (1 June 00:30 +05:00) is June.
    assert {k: (n, round(v, 2) if v is not None else None) for k, (n, v) in by_month.items()} == {
        date(2026, 1, 1): (3, 33.33),
        date(2026, 2, 1): (2, 50.0),
        date(2026, 3, 1): (3, 0.0),
        date(2026, 4, 1): (3, -33.33),
        date(2026, 5, 1): (3, 33.33),
        date(2026, 6, 1): (1, 100.0),
    }
    daily = metrics_for(
        company=company, survey=survey, since=date(2026, 1, 1), until=date(2026, 3, 31), trend="day"
    )
    assert daily["trend"] is not None
    per_day = {p["start"]: p["response_count"] for p in daily["trend"] if p["response_count"]}
    assert per_day == {
        date(2026, 1, 5): 1,
        date(2026, 1, 6): 1,  # 20:30 UTC on the 5th
        date(2026, 1, 20): 1,
        date(2026, 2, 2): 1,
        date(2026, 2, 14): 1,
        date(2026, 3, 1): 1,
        date(2026, 3, 10): 2,
    }
    # The folded rollup itself holds those days (not only the live count).
    assert set(
        Rollup.objects.for_company(company)
        .filter(day__lte=date(2026, 1, 31))
        .values_list("day", "score", "count")
    ) == {(date(2026, 1, 5), 10, 1), (date(2026, 1, 6), 9, 1), (date(2026, 1, 20), 3, 1)}

    answer = Response.objects.for_company(company).get(delighted__delighted_id="1003")
    assert answer.comment == "Курьер опоздал на два часа, никто не позвонил"
    assert answer.created_at == datetime(2026, 1, 20, 11, 0, tzinfo=UTC)
    assert answer.updated_at == datetime(2026, 1, 21, 8, 0, tzinfo=UTC)
    assert answer.contact_properties == {"Plan": "Pro", "Country": "RU"}
    assert answer.owed_at is None  # history: no webhook or alert owed
    link = DelightedResponse.objects.for_company(company).get(delighted_id="1003")
    assert link.tags == ["Delivery", "Late"]
    assert link.notes == [{"text": "Перезвонили 21.01 — вернули деньги за доставку"}]
    assert link.person_id == "503"
    assert DelightedResponse.objects.for_company(company).get(delighted_id="1006").notes == [
        {"text": "Escalated to logistics"},
        {"text": "Refund sent 03.03"},
    ]

    ivan = Contact.objects.for_company(company).get(email="ivan.petrov@example.ru")
    assert ivan.name == "Иван Петров"
    # The people export is the latest word; answers' snapshots only fill what it lacks.
    assert ivan.properties["City"] == "Москва"
    assert ivan.properties["Country"] == "RU"
    aigerim = Contact.objects.for_company(company).get(email="aigerim@example.kz")
    assert aigerim.properties["Plan"] == "Enterprise"  # not the answers' older "Pro"
    assert ivan.properties["delighted_last_sent_at"] == "2026-03-30T09:00:00+00:00"
    serik = Contact.objects.for_company(company).get(phone="+77017654321")
    assert (serik.email, serik.name) == (None, "Серик Болатов")
    assert not Contact.objects.for_company(company).filter(name="Broken Row").exists()
    assert set(
        Suppression.objects.for_company(company).values_list("channel", "address", "reason")
    ) == {
        ("email", "olga@example.ru", "unsubscribed"),
        ("email", "tom@example.com", "unsubscribed"),
        ("email", "old-address@example.org", "bounced"),
    }
    bad = DelightedImport.objects.for_company(company).get(kind=ExportKind.RESPONSES)
    assert [(e["line"], e["column"]) for e in bad.errors] == [
        (16, "Score"),
        (17, "Response date"),
    ]

    before = snapshot(company)
    again = run(company, *FILES)
    assert "17 rows, 0 created, 0 updated, 15 unchanged, 2 invalid" in again
    assert snapshot(company) == before
    rollup_fold()
    assert metrics_for(company=company, survey=survey)["response_count"] == 15


def test_error_report_is_formula_escaped(almaty: Company) -> None:
    run(almaty, DATA / "delighted-responses.csv")
    imp = DelightedImport.objects.for_company(almaty).get()
    with imp.error_report.open("rb") as handle:
        rows = list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig"))))
    assert rows[0][-2:] == ["error_line", "error"]
    assert rows[1][0] == "1015"
    assert rows[1][2] == '\'=HYPERLINK("http://evil.example")'
    assert rows[1][-2] == "16"
    assert rows[2][-1].startswith("Response date: ")


def test_a_bad_file_lands_nothing_and_says_why(almaty: Company, tmp_path: Path) -> None:
    mystery = tmp_path / "mystery.csv"
    mystery.write_text("Foo,Bar\n1,2\n")
    good = DATA / "delighted-people.csv"
    with pytest.raises(CommandError, match="cannot tell which export"):
        run(almaty, good, mystery)
    assert not Contact.objects.for_company(almaty).exists()
    assert not DelightedImport.objects.for_company(almaty).exists()

    no_time = tmp_path / "responses.csv"
    no_time.write_text("Score,Comment,Email\n9,ok,a@b.test\n")
    with pytest.raises(CommandError, match="no column for created_at"):
        run(almaty, no_time)
    assert not Response.objects.for_company(almaty).exists()

    broken = tmp_path / "broken.csv"
    # Valid UTF-8 for the first 100 KB (the encoding is sniffed there), then not.
    broken.write_bytes(b"Email,Name\n" + b"ann@x.test,Ann\n" * 8000 + b"bob@x.test,\xff\xfe\n")
    with pytest.raises(CommandError):
        run(almaty, f"people={broken}")
    assert not Contact.objects.for_company(almaty).exists()

    with pytest.raises(CommandError, match="No company"):
        call_command("import_delighted", "--company", "nope", str(good))
    with pytest.raises(CommandError, match="No such file"):
        run(almaty, tmp_path / "missing.csv")


def test_command_line_prints_one_line_error_and_exits_1(almaty: Company, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from django.db import connection

    mystery = tmp_path / "mystery.csv"
    mystery.write_text("Foo,Bar\n1,2\n")
    result = subprocess.run(  # noqa: S603 (our own manage.py)
        [sys.executable, "manage.py", "import_delighted", "--company", "no-such-co", str(mystery)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": _url_of_test_database(connection.settings_dict)},
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "No company" in result.stderr


def test_answers_without_ids_are_keyed_by_content(almaty: Company, tmp_path: Path) -> None:
    plain = tmp_path / "nps.csv"
    plain.write_text(
        "email,score,comment,created_at,tags\n"
        'a@x.test,9,Хорошо,1767645000,"x,y"\n'
        "b@x.test,4,,1767645100,\n"
        ",10,anonymous web answer,1767645200,\n",
        encoding="utf-8",
    )
    run(almaty, plain)
    run(almaty, plain)
    assert Response.objects.for_company(almaty).count() == 3
    assert Response.objects.for_company(almaty).filter(contact__isnull=True).count() == 1


def test_other_companies_are_untouched(almaty: Company, other_company: Company) -> None:
    run(other_company, DATA / "delighted-people.csv")
    run(almaty, *FILES)
    assert Contact.objects.for_company(other_company).count() == 4
    assert not Response.objects.for_company(other_company).exists()


def _url_of_test_database(settings: dict[str, Any]) -> str:
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def _responses_file(rows: int, offset: int = 0) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    lines = ["Response ID,Score,Comment,Created At,Email,Name,Plan"]
    for n in range(offset, offset + rows):
        lines.append(f"{n},{n % 11},Комментарий {n},{1767645000 + n * 3600},p{n}@x.test,P {n},pro")
    return SimpleUploadedFile("responses.csv", "\n".join(lines).encode())


def _queries_of_import(company: Company, rows: int, offset: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from delighted_compat.importer import (
        delighted_import_create,
        delighted_import_run,
        delighted_import_start,
    )

    imp = delighted_import_create(company=company, upload=_responses_file(rows, offset))
    delighted_import_start(company=company, imp=imp, in_worker=False)
    with CaptureQueriesContext(connection) as queries:
        delighted_import_run(company=company, import_pk=imp.pk)
    imp.refresh_from_db()
    assert imp.created_count == rows
    return len(queries)


def test_a_chunk_costs_the_same_queries_whatever_its_size(almaty: Company) -> None:
    """Batch writes: no query per row (a worker parses, a chunk is a few statements)."""
    assert _queries_of_import(almaty, 5, 0) == _queries_of_import(almaty, 400, 1000)


def test_a_lost_task_message_is_woken_again(
    almaty: Company, django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from delighted_compat.importer import (
        delighted_import_create,
        delighted_import_start,
        delighted_imports_rewake,
    )
    from delighted_compat.models import DelightedImportStatus

    imp = delighted_import_create(company=almaty, upload=_responses_file(3))
    delighted_import_start(company=almaty, imp=imp, in_worker=False)  # as if the message was lost
    assert delighted_imports_rewake() == 0  # not stale yet
    DelightedImport.objects.for_company(almaty).filter(pk=imp.pk).update(
        queued_at=timezone.now() - timedelta(minutes=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert delighted_imports_rewake() == 1
    imp.refresh_from_db()
    assert imp.status == DelightedImportStatus.DONE
    assert Response.objects.for_company(almaty).count() == 3
    assert delighted_imports_rewake() == 0


def test_other_survey_types_and_languages(almaty: Company, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "Response ID,Survey Type,Score,Created At,Email,Locale\n"
        "1,nps,9,2026-01-05T09:00:00Z,a@x.test,ru-RU\n"
        "2,csat,5,2026-01-05T09:00:00Z,b@x.test,en\n"
        "3,nps,7,2026-01-05T09:00:00Z,c@x.test,fr\n"
        "4,nps,,2026-01-05T09:00:00Z,d@x.test,en\n",
        encoding="utf-8",
    )
    run(almaty, mixed)
    answers = {
        r.delighted.delighted_id: r
        for r in Response.objects.for_company(almaty).select_related("delighted")
    }
    assert sorted(answers) == ["1", "3"]
    assert answers["1"].language == "ru"
    assert answers["3"].contact_properties == {"language": "fr"}
    imp = DelightedImport.objects.for_company(almaty).get()
    assert [(e["line"], e["column"]) for e in imp.errors] == [(3, "Survey Type"), (5, "Score")]


def test_xlsx_exports_with_spreadsheet_dates(almaty: Company, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Response ID", "Score", "Comment", "Created At", "Email"])
    sheet.append([77, 10, "Отлично", datetime(2026, 2, 28, 23, 30), "x@x.test"])  # local time
    sheet.append([78, 3.0, None, datetime(2026, 3, 1, 0, 30), "y@x.test"])
    path = tmp_path / "responses.xlsx"
    book.save(path)
    run(almaty, path)
    rollup_fold()
    month = metrics_for(
        company=almaty, since=date(2026, 2, 1), until=date(2026, 3, 31), trend="month"
    )["trend"]
    assert month is not None
    assert [(p["start"], p["response_count"]) for p in month] == [
        (date(2026, 2, 1), 1),
        (date(2026, 3, 1), 1),
    ]


def test_an_id_column_is_the_response_in_answers_and_the_person_in_people() -> None:
    assert suggest_mapping(["id", "score", "created_at"], ExportKind.RESPONSES)[0]["id"] == (
        "response_id"
    )
    assert suggest_mapping(["id", "email", "customer_id"], ExportKind.PEOPLE)[0] == {
        "id": "person_id",
        "email": "email",
        "customer_id": PROPERTY_PREFIX + "customer_id",  # the customer's own: a property
    }


def test_a_later_export_with_an_edited_answer_updates_it(almaty: Company, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(
        "Response ID,Score,Comment,Created At,Updated At,Email\n"
        "9,3,Плохо,2026-01-05T09:00:00Z,,a@x.test\n"
        "10,8,,2026-01-06T09:00:00Z,,b@x.test\n",
        encoding="utf-8",
    )
    later = tmp_path / "later.csv"
    later.write_text(
        "Response ID,Score,Comment,Created At,Updated At,Email\n"
        "9,9,Разобрались — спасибо!,2026-01-05T09:00:00Z,2026-01-09T10:00:00Z,a@x.test\n"
        "10,8,,2026-01-06T09:00:00Z,,b@x.test\n",
        encoding="utf-8",
    )
    run(almaty, first)
    assert "0 created, 1 updated, 1 unchanged" in run(almaty, later)
    answer = Response.objects.for_company(almaty).get(delighted__delighted_id="9")
    assert (answer.score, answer.category, answer.comment) == (
        9,
        "promoter",
        "Разобрались — спасибо!",
    )
    assert answer.created_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # still that day
    rollup_fold()
    january = metrics_for(company=almaty, since=date(2026, 1, 1), until=date(2026, 1, 31))
    assert (january["response_count"], january["nps"]) == (2, 50.0)
    assert "0 updated, 2 unchanged" in run(almaty, later)  # and again: nothing
