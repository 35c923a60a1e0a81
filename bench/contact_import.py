"""Contact import: rows/s through the real import code vs PostgreSQL COPY of the same rows.

Generates a contact CSV (``BENCH_ROWS`` rows, default 1,000,000: email, name, language,
external id and two properties) into a temp file, imports it through
``surveys.imports`` (upload stored, mapping, streamed parse, per-row validation, bulk chunks)
and COPYs the same file into a scratch table in the same run. Peak memory (max RSS of a
child process) is measured for 100,000 rows and for ``BENCH_ROWS``: flat means bounded.
Prints the ratio import/COPY last (goal ≥ 0.4 at 1,000,000 rows, issue 13; the COPY is
measured in the same run, so the ratio holds on a busy machine better than rows/s do).

Where an import's time goes (200,000 rows, 10,000-row chunks, per 200,000 rows): the
writer thread waits on PostgreSQL for about 3.5 s (looking up existing contacts by
external id and email 0.7-0.8 s, the INSERT into a table of six indexes 1.7-1.9 s, the
commit 0.7 s: the company foreign key is checked there, deferred, once per row, and
``synchronous_commit = off`` does not shorten it; the chunk's COPY 0.3 s) and runs about
1.2 s of Python (matching, the COPY text); the main thread parses (about 1.8 s of Python)
while the chunk before it is written. The two threads share one interpreter lock, so the
Python halves slow each other down and overlapping them saves little (7.0 s in series, 6.2 s
overlapped). The baseline's COPY + INSERT of the same rows takes 1.5-1.8 s, so the
database work alone bounds the ratio near 0.45; reaching it would need the next chunk's
lookup on a second connection while the one before it is written.

Run: ``python -m bench contact_import`` (``import`` is a Python keyword, hence the name).
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_ROWS = 100_000
HEADERS = ["email", "name", "language", "external_id", "plan", "city"]
CITIES = ["Almaty", "Astana", "Shymkent", "Karaganda", "Moscow", "London"]


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for i in range(rows):
            writer.writerow(
                [
                    f"person{i}@example.com",
                    f"Person {i}",
                    ("en", "ru", "kk")[i % 3],
                    f"ext-{i}",
                    "pro" if i % 4 == 0 else "free",
                    CITIES[i % len(CITIES)],
                ]
            )


def _import_seconds(path: Path, media: str) -> tuple[float, dict[str, int]]:
    from django.conf import settings
    from django.core.files.uploadedfile import UploadedFile

    from companies.services import company_create, user_create
    from surveys.imports import contact_import_create, contact_import_start
    from surveys.models import ContactImport

    settings.MEDIA_ROOT = media
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the import runs in this process, timed
    owner = user_create(email="owner@import.bench", password="bench-password-123")  # noqa: S106
    company = company_create(name="Import bench", owner=owner)
    start = time.perf_counter()
    with path.open("rb") as handle:
        upload = UploadedFile(handle, name="contacts.csv", size=path.stat().st_size)
        contact_import = contact_import_create(company=company, upload=upload)
    # Autocommit: the on-commit enqueue runs at once, eagerly, here.
    contact_import_start(company=company, contact_import=contact_import)
    seconds = time.perf_counter() - start
    done = ContactImport.objects.for_company(company).get(pk=contact_import.pk)
    assert done.status == "done", done.failure
    counts = {"created": done.created_count, "updated": done.updated_count}
    counts["invalid"] = done.invalid_count
    return seconds, counts


def _copy_seconds(path: Path) -> float:
    """COPY the same CSV into a table shaped like the contacts table (properties as jsonb)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy_raw (email text, name text, language text, "
            "external_id text, plan text, city text)"
        )
        cursor.execute(
            "CREATE TABLE bench_copy (id bigserial primary key, company_id bigint, "
            "public_id varchar(32) default md5(random()::text), email varchar(254), "
            "name varchar(200), language varchar(8), external_id varchar(128), "
            "properties jsonb, created_at timestamptz default now(), "
            "updated_at timestamptz default now())"
        )
        cursor.execute("CREATE UNIQUE INDEX ON bench_copy (company_id, email)")
        cursor.execute("CREATE UNIQUE INDEX ON bench_copy (company_id, external_id)")
        start = time.perf_counter()
        with path.open("r", encoding="utf-8") as handle:
            raw = cursor.cursor  # psycopg2's own cursor: copy_expert
            raw.copy_expert("COPY bench_copy_raw FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
        cursor.execute(
            "INSERT INTO bench_copy (company_id, email, name, language, external_id, properties) "
            "SELECT 1, email, name, language, external_id, "
            "jsonb_build_object('plan', plan, 'city', city) FROM bench_copy_raw"
        )
        return time.perf_counter() - start


def child(rows: int) -> None:
    """One measured run in a fresh process (so max RSS belongs to this size alone)."""
    from bench._django import bench_database

    with tempfile.TemporaryDirectory() as tmp, bench_database():
        path = Path(tmp) / "contacts.csv"
        _write_csv(path, rows)
        import_s, counts = _import_seconds(path, str(Path(tmp) / "media"))
        copy_s = _copy_seconds(path)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"rows": rows, "import_s": import_s, "copy_s": copy_s, "peak_kb": peak_kb, **counts}
        ),
        flush=True,
    )


def _run_child(rows: int) -> dict[str, float]:
    output = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bench.contact_import", "--child", str(rows)],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    small = _run_child(min(SMALL_ROWS, rows))
    large = _run_child(rows) if rows > SMALL_ROWS else small
    for run in (small, large):
        print(
            f"{int(run['rows']):>9,} rows: import {run['rows'] / run['import_s']:,.0f} rows/s "
            f"({run['import_s']:.1f} s, {int(run['created']):,} created), "
            f"COPY {run['rows'] / run['copy_s']:,.0f} rows/s ({run['copy_s']:.1f} s), "
            f"peak memory {run['peak_kb'] / 1024:.0f} MB"
        )
    print(
        f"memory {int(large['rows']):,} / {int(small['rows']):,} rows: "
        f"{large['peak_kb'] / small['peak_kb']:.2f}"
    )
    print(f"ratio import/COPY: {large['copy_s'] / large['import_s']:.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
