"""Contact import: rows/s through the real import code vs PostgreSQL COPY of the same rows.

Generates a contact CSV (``BENCH_ROWS`` rows, default 1,000,000: email, name, language,
external id and two properties) into a temp file, imports it through
``surveys.imports`` (upload stored, mapping, streamed parse, per-row validation, bulk chunks)
and COPYs the same file into a scratch table in the same run. Peak memory (max RSS of a
child process) is measured for 100,000 rows and for ``BENCH_ROWS``: flat means bounded.
Prints the ratio import/COPY last (goal ≥ 0.4 at 1,000,000 rows, issue 13; the COPY is
measured in the same run, so the ratio holds on a busy machine better than rows/s do).

Where an import's time goes. The import is a pipeline of three threads
(``surveys.imports._ChunkWriter``, 10,000-row chunks): while chunk n is written (writer
thread: COPY into a temp table, one INSERT … SELECT, commit), chunk n+1's existing contacts
are looked up (look-up thread, its own connection) and chunk n+2 is parsed (main thread,
which then matches chunk n+1 and makes its COPY text).

Issue 13, second step (measured one change at a time on a quiet machine, 1,000,000 rows,
from 24.4 s against COPY 6-7 s, 0.30):
- The lookups: once a written chunk named nobody who existed, the next chunks are not
  looked up but taken for new people; their insert meets the unique keys if that was wrong,
  rolls back and is matched again with a lookup. A first import looks up two chunks, not a
  hundred (2.7 s of PostgreSQL and the look-up thread's Python, on which the main thread
  waited 2-3 s).
- The interpreter lock: the writer thread, back from each statement, waited for the lock
  the parsing thread held, up to the switch interval (5 ms) each time; 0.2 ms while the
  pipeline runs (``PIPELINE_SWITCH_INTERVAL``): 20 s → 15 s on its own, the largest step.
- Public ids ordered by creation (``new_ordered_public_ids``): the unique index on
  (company, public_id) is appended to instead of written at random pages: the INSERT of
  600,000 rows 5.1 s → 3.8 s in isolation.
- The properties of a chunk in one ``json.dumps`` (one JSON array parameter, element n for
  row n) instead of one per row; plain addresses checked by one regex at a known domain;
  new contacts made in one call: the main thread's Python about a fifth less.
- This bench no longer times the worker's first import of the task modules (about a
  second, paid once when a worker starts).
Figures then: 0.36-0.42 over eight runs, median 0.39 (69,700 rows/s against COPY 167,678 at
best), where the main thread's Python (csv, per-row checks, matching, COPY text) and the
writer's PostgreSQL (the INSERT into six indexes, the company foreign key checked per row at
commit) took about as long as each other.

Third step (2026-12-07, another machine, noisier and slower: COPY 67,000-93,000 rows/s):
the parsing thread was the bottleneck (94% busy, the writer 27% idle, py-spy), and it used
19-22 s of CPU for a million rows where its work measured alone was 9 µs a row. With
``gc.callbacks``: the garbage collector's full passes took 2.8 s (54 passes, each walking
the chunks held in the pipeline), the young ones 1.8 s. An import now makes no full pass
(``surveys.imports._young_collections_only``): 0.38-0.41 → 0.51-0.55 over four runs, memory
still flat (1.00-1.01). Without the company foreign key (measured once, not done: a decision
for the planners) the writer's PostgreSQL would take about 6 s less per million rows on this
machine.

Memory: about three chunks are held (parsed, planned, written): 213 MB for 1,000,000 rows
against 212 MB for 100,000 (1.00).

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
    # What a worker imports when it starts (the task modules and what they import), not
    # timed: about a second otherwise, the first enqueue paying for it.
    from celery import current_app

    current_app.loader.import_default_modules()
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
