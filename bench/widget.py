"""The website widget over loopback against gunicorn, compared with a trivial view.

Starts ``gunicorn nps_saas.wsgi`` (2 sync workers, NPS_MODE=test) on a throw-away database
with one survey whose widget is on, then concurrent clients (threads, ``http.client``) play
VISITORS identified visitors of a host site (each from its own address, as seen through one
proxy of ours: ``NUM_PROXIES=1``): each asks "should I show?" (``POST /w/show/``, which
finds or creates the contact, checks the throttle across channels and records the showing),
then answers with the ticket it got (``POST /w/answer/``). The same clients GET ``/healthz``
(a trivial Django view) as many times, in alternating rounds. Prints requests/s and p99 for
each, checks every accepted answer is one row on the "widget" channel, the ratios show /
trivial and answer / trivial (goal ≥ 0.5 each), and the script's gzipped size (≤ 15 KB).
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import threading
from collections.abc import Callable

from bench._django import bench_database
from bench.answer import (
    ROUNDS,
    WORKERS,
    Run,
    _combine,
    _free_port,
    _purge_broker,
    _request,
    _run,
    _start_gunicorn,
)

VISITORS = int(os.environ.get("BENCH_VISITORS", "2000"))
ORIGIN = "https://app.widget.bench"


def _setup() -> tuple[int, str]:
    from companies.services import company_create, user_create
    from surveys.models import Survey, SurveyStatus
    from widget.services import widget_settings_update

    owner = user_create(email="owner@widget.bench", password=secrets.token_urlsafe(16))
    company = company_create(name="Widget bench", owner=owner)
    survey = Survey.objects.create(company=company, name="Bench", status=SurveyStatus.ACTIVE)
    widget = widget_settings_update(
        company=company, survey=survey, enabled=True, allowed_origins=[ORIGIN], delay_seconds=0
    )
    return company.pk, widget.publishable_key


def main() -> None:
    os.environ["NUM_PROXIES"] = "1"
    with bench_database():
        company_id, key = _setup()
        port = _free_port()
        gunicorn = _start_gunicorn(port)
        tickets: dict[int, str] = {}
        accepted: set[int] = set()
        lock = threading.Lock()

        def headers(n: int) -> dict[str, str]:
            return {
                "Content-Type": "text/plain",
                "Origin": ORIGIN,
                "X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
            }

        def show(n: int) -> Callable[[], bool]:
            body = json.dumps(
                {
                    "key": key,
                    "visitor": f"visitor{n:08d}",
                    "url": f"{ORIGIN}/app/projects/{n}",
                    "person": {
                        "email": f"p{n}@widget.bench",
                        "name": f"Person {n}",
                        "properties": {"plan": "pro" if n % 2 else "free"},
                    },
                }
            )

            def job() -> bool:
                status, raw = _request(port, "POST", "/w/show/", body, headers(n))
                if status != 200:
                    return False
                answer = json.loads(raw)
                if not answer.get("show"):
                    return False
                with lock:
                    tickets[n] = answer["ticket"]
                return True

            return job

        def answer(n: int) -> Callable[[], bool]:
            def job() -> bool:
                body = json.dumps({"key": key, "ticket": tickets.get(n, ""), "score": n % 11})
                status, _ = _request(port, "POST", "/w/answer/", body, headers(n))
                if status == 200:
                    with lock:
                        accepted.add(n)
                return status == 200

            return job

        def trivial() -> bool:
            return _request(port, "GET", "/healthz")[0] == 200

        try:
            _run([trivial] * 200)  # warm up both workers
            trivial_runs, show_runs, answer_runs = [], [], []
            size = -(-VISITORS // ROUNDS)
            for start in range(0, VISITORS, size):
                chunk = range(start, min(VISITORS, start + size))
                trivial_runs.append((*_run([trivial] * len(chunk)), len(chunk)))
                show_runs.append((*_run([show(n) for n in chunk]), len(chunk)))
                answer_runs.append((*_run([answer(n) for n in chunk]), len(chunk)))
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        rows = _rows(company_id)
        _purge_broker()
    _report(trivial_runs, show_runs, answer_runs, len(accepted), rows)


def _report(
    trivial_runs: list[Run], show_runs: list[Run], answer_runs: list[Run], accepted: int, rows: int
) -> None:
    from widget.views_public import script_body

    trivial_rps, trivial_p99, trivial_failed = _combine(trivial_runs)
    show_rps, show_p99, show_failed = _combine(show_runs)
    answer_rps, answer_p99, answer_failed = _combine(answer_runs)
    print(f"gunicorn: {WORKERS} sync workers; loopback; {VISITORS} identified visitors")
    print(
        f"trivial view GET /healthz: {trivial_rps:.0f} req/s, p99 {trivial_p99 * 1000:.1f} ms, "
        f"{trivial_failed} failed"
    )
    print(
        f"show POST /w/show/:        {show_rps:.0f} req/s, p99 {show_p99 * 1000:.1f} ms, "
        f"{show_failed} failed of {VISITORS}"
    )
    print(
        f"answer POST /w/answer/:    {answer_rps:.0f} req/s, p99 {answer_p99 * 1000:.1f} ms, "
        f"{answer_failed} failed of {VISITORS}"
    )
    print(f"accepted answers: {accepted}; widget rows: {rows}")
    if rows != accepted:
        print("FAILED: answers and rows disagree")
    print(f"script: {len(script_body())} bytes, {len(gzip.compress(script_body(), 9))} gzipped")
    print(f"ratio show/trivial throughput: {show_rps / trivial_rps:.2f}")
    print(f"ratio answer/trivial throughput: {answer_rps / trivial_rps:.2f}")


def _rows(company_id: int) -> int:
    from companies.models import Company
    from responses.models import Response

    company = Company.objects.get(pk=company_id)
    return Response.objects.for_company(company).filter(channel="widget").count()


if __name__ == "__main__":
    main()
