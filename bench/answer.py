"""Answer submissions over loopback against gunicorn, compared with a trivial view.

Starts ``gunicorn nps_saas.wsgi`` (2 sync workers, NPS_MODE=test) on a throw-away database
with one survey and ANSWERS invitations, then concurrent clients (threads, ``http.client``)
POST one answer per unique token to ``/r/<token>/`` — the no-JavaScript form, CSRF included.
The same clients then GET ``/healthz`` (a trivial Django view with one ``SELECT 1``) as many
times. Prints requests/s and p99 for both, checks that every accepted answer is exactly one
row (none lost, none doubled) carrying what it owes (its webhook event and alert evaluation,
marked on the row), and last the throughput ratio answer / trivial view (goal ≥ 0.7). As in
production, tasks do not run in the request: an answer publishes one wake-up message to a
Redis database of the bench's own, which no worker reads during the run; and database
connections persist between requests (production's ``CONN_MAX_AGE``; ``BENCH_CONN_MAX_AGE=0``
opens one per request, as the test profile does).
"""

from __future__ import annotations

import http.client
import os
import queue
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from bench._django import bench_database

if TYPE_CHECKING:
    from companies.models import Company

ANSWERS = int(os.environ.get("BENCH_ANSWERS", "3000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
# As in production, gunicorn connects as a role that owns no table, so the row-level security
# policies apply (companies/rls.py); BENCH_APP_ROLE="" connects as the owner (they do not).
APP_ROLE = os.environ.get("BENCH_APP_ROLE", "nps_app")
# Production's default (nps_saas/settings.py): a worker keeps its connection for 60 s.
CONN_MAX_AGE = int(os.environ.get("BENCH_CONN_MAX_AGE", "60"))
WORKERS = 2
ROUNDS = 5
ROOT = Path(__file__).resolve().parent.parent
# Django accepts a 32-character CSRF secret sent both as the cookie and as the form field:
# one pair for every client, as a browser would have after opening the page.
CSRF_SECRET = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    from django.db import connection

    d = connection.settings_dict
    auth = quote(d["USER"] or "postgres")
    if d["PASSWORD"]:
        auth += ":" + quote(d["PASSWORD"])
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


def _setup() -> tuple[Company, list[str]]:
    from companies.services import company_create, user_create
    from surveys.models import Contact, Invitation, InvitationStatus, Survey, SurveyStatus
    from surveys.tokens import new_nonce, token_for, token_hash

    owner = user_create(email="owner@answer.bench", password=secrets.token_urlsafe(16))
    company = company_create(name="Answer bench", owner=owner)
    survey = Survey.objects.create(company=company, name="Bench", status=SurveyStatus.ACTIVE)
    contacts = Contact.objects.bulk_create(
        Contact(company=company, email=f"c{i}@answer.bench") for i in range(ANSWERS)
    )
    nonces = [new_nonce() for _ in range(ANSWERS)]
    tokens = [token_for(n) for n in nonces]
    Invitation.objects.bulk_create(
        Invitation(
            company=company,
            survey=survey,
            contact=contact,
            token_nonce=nonce,
            token_hash=token_hash(token),
            status=InvitationStatus.SENT,
        )
        for contact, nonce, token in zip(contacts, nonces, tokens, strict=True)
    )
    return company, tokens


def _broker_url() -> str:
    """A Redis database of its own: the answers' wake-up messages must not reach a worker
    of the test suite (its ids are another database's)."""
    from django.conf import settings

    return settings.REDIS_URL.rsplit("/", 1)[0] + "/14"


def _start_gunicorn(port: int) -> subprocess.Popen[bytes]:
    # As in production: tasks are not run in the request, an answer publishes one wake-up
    # message (to a broker no worker reads here: the bench measures the answer itself).
    env = {
        **os.environ,
        "NPS_MODE": "test",
        "DATABASE_URL": _database_url(),
        "DEBUG": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_BROKER_URL": _broker_url(),
        "CONN_MAX_AGE": str(CONN_MAX_AGE),
    }
    if APP_ROLE:
        from django.db import connection

        from companies.rls import app_role_grants

        with connection.cursor() as cursor:
            for statement in app_role_grants(APP_ROLE):
                cursor.execute(statement)
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c role={APP_ROLE}".strip()
    process = subprocess.Popen(  # noqa: S603 (our own executable and arguments)
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "nps_saas.wsgi",
            "--workers",
            str(WORKERS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _body = _request(port, "GET", "/healthz")
            if status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not come up")


def _request(
    port: int,
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    # Sync gunicorn workers close the connection after each response: one connection each.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


Run = tuple[float, list[float], int, int]  # seconds, latencies, failures, requests


def _combine(runs: list[Run]) -> tuple[float, float, int]:
    """(requests/s, p99 seconds, failures) over all rounds."""
    elapsed = sum(r[0] for r in runs)
    latencies = [x for r in runs for x in r[1]]
    return (
        sum(r[3] for r in runs) / elapsed,
        statistics.quantiles(latencies, n=100)[98],
        sum(r[2] for r in runs),
    )


def _run(jobs: list[Callable[[], bool]]) -> tuple[float, list[float], int]:
    """Run the jobs on CLIENTS threads; (seconds, latencies, failures)."""
    work: queue.SimpleQueue[Callable[[], bool]] = queue.SimpleQueue()
    for job in jobs:
        work.put(job)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client() -> None:
        mine: list[float] = []
        failed = 0
        while True:
            try:
                job = work.get_nowait()
            except queue.Empty:
                break
            start = time.perf_counter()
            ok = job()
            mine.append(time.perf_counter() - start)
            failed += not ok
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, failures[0]


def main() -> None:
    with bench_database():
        company, tokens = _setup()
        port = _free_port()
        gunicorn = _start_gunicorn(port)
        accepted: dict[str, int] = {}
        accepted_lock = threading.Lock()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={CSRF_SECRET}",
        }

        def answer(token: str, score: int) -> Callable[[], bool]:
            body = urlencode(
                {"csrfmiddlewaretoken": CSRF_SECRET, "score": score, "comment": f"bench {score}"}
            )

            def job() -> bool:
                status, _ = _request(port, "POST", f"/r/{token}/", body, headers)
                if status == 303:
                    with accepted_lock:
                        accepted[token] = score
                return status == 303

            return job

        def trivial() -> bool:
            return _request(port, "GET", "/healthz")[0] == 200

        try:
            _run([trivial] * 200)  # warm up both workers
            # Alternate rounds of each, so that a change in the machine's load during the
            # run weighs on both figures alike.
            trivial_runs, answer_runs = [], []
            size = -(-len(tokens) // ROUNDS)
            for start in range(0, len(tokens), size):
                chunk = tokens[start : start + size]
                trivial_runs.append((*_run([trivial] * len(chunk)), len(chunk)))
                answer_runs.append(
                    (*_run([answer(t, (start + i) % 11) for i, t in enumerate(chunk)]), len(chunk))
                )
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
        lost, doubled, wrong = _verify(company, tokens, accepted)
        _purge_broker()
    trivial_rps, trivial_p99, trivial_failed = _combine(trivial_runs)
    answer_rps, answer_p99, answer_failed = _combine(answer_runs)
    print(
        f"gunicorn: {WORKERS} sync workers; {CLIENTS} concurrent clients; loopback; "
        f"CONN_MAX_AGE={CONN_MAX_AGE}"
    )
    print(
        f"trivial view GET /healthz: {trivial_rps:.0f} req/s, p99 {trivial_p99 * 1000:.1f} ms, "
        f"{trivial_failed} failed"
    )
    print(
        f"answer POST /r/<token>/:   {answer_rps:.0f} req/s, p99 {answer_p99 * 1000:.1f} ms, "
        f"{answer_failed} failed of {len(tokens)}"
    )
    print(
        f"accepted answers: {len(accepted)}; rows lost {lost}, duplicated {doubled}, "
        f"wrong score {wrong} (a duplicate counts rows beyond one or never accepted)"
    )
    if lost or doubled or wrong:
        print("FAILED: answers and rows disagree")
    print(f"ratio answer/trivial throughput: {answer_rps / trivial_rps:.2f}")


def _purge_broker() -> None:
    import redis

    redis.Redis.from_url(_broker_url()).flushdb()


def _verify(company: Company, tokens: list[str], accepted: dict[str, int]) -> tuple[int, int, int]:
    """(accepted answers without a row, invitations with >1 row or rows never accepted,
    rows whose score is not the accepted one)."""
    from django.db.models import Count

    from responses.models import Response
    from surveys.models import Invitation
    from surveys.tokens import token_hash

    by_hash = {token_hash(t): t for t in tokens}
    rows = (
        Response.objects.for_company(company).values("invitation__token_hash", "score").order_by()
    )
    seen: dict[str, list[int]] = {}
    for row in rows:
        seen.setdefault(by_hash[row["invitation__token_hash"]], []).append(row["score"])
    lost = sum(1 for token in accepted if token not in seen)
    doubled = sum(1 for token, scores in seen.items() if len(scores) > 1 or token not in accepted)
    wrong = sum(1 for token, scores in seen.items() if accepted.get(token) not in scores)
    answered = (
        Invitation.objects.for_company(company)
        .filter(answered_at__isnull=False)
        .aggregate(n=Count("id"))["n"]
    )
    lost += max(0, len(accepted) - answered)
    # What each answer owes (its webhook event and alert evaluation) is on its row: an
    # accepted answer without the mark would be a detractor left without a follow-up.
    unmarked = (
        Response.objects.for_company(company).filter(owed_at__isnull=True).aggregate(n=Count("id"))
    )["n"]
    lost += unmarked
    return lost, doubled, wrong


if __name__ == "__main__":
    main()
