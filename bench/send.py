"""Campaign sending: invitations/s through the real pipeline vs the fake provider's own rate.

A fake Postmark (``--provider``: a ``ThreadingHTTPServer`` subprocess on 127.0.0.1 that parses
each call's JSON and answers success for every message) takes the mail. For 10,000 and for
``BENCH_INVITATIONS`` (default 100,000) contacts, on a throw-away PostgreSQL database and the
configured Redis: two fresh Celery worker processes (solo pool, every queue, ``DEBUG`` off,
Postmark's bulk API pointed at the fake, the shared rate limit raised out of the way) run the
campaign — expansion, send tasks of 500, one bulk call each — while this process plays beat,
running the dispatcher (``invitations_dispatch_due``) once a second. Timed from
``campaign_create`` until the campaign is done; peak RSS (``VmHWM``) of the busier worker.

The baseline, in the same run: two client threads post a real bulk call captured from the
pipeline run to the same fake server over keep-alive connections, as fast as it answers.
Prints invitations/s, the memory ratio and, last, the ratio pipeline/provider.
Goal: ≥ 2,000 invitations/s end to end at 100k; memory at 100k ≤ 1.2 × at 10k.

Run: ``DATABASE_URL=… REDIS_URL=… python -m bench send``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench._django import bench_database

SMALL = 10_000
WORKERS = 2
ROOT = Path(__file__).resolve().parent.parent
BASELINE_SECONDS = 5.0
DISPATCH_EVERY = 1.0


# --- The fake provider (its own process) ------------------------------------------------------


def serve_provider(port: int, capture: Path) -> None:
    """Answer Postmark's /email, /email/batch and /email/bulk with success for every message.

    The first bulk call's body is saved to ``capture`` for the baseline; GET /stats gives the
    number of messages accepted so far.
    """
    accepted = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer({"accepted": accepted[0]})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            data = json.loads(raw)
            now = "2026-01-01T00:00:00Z"
            if self.path.rstrip("/").endswith("email/bulk"):
                count = len(data["Messages"])
                if not capture.exists():
                    capture.write_bytes(raw)
                answer: Any = {
                    "ID": str(uuid.uuid4()),
                    "Status": "Accepted",
                    "SubmittedAt": now,
                    "PercentageCompleted": 0.0,
                    "TotalMessages": count,
                }
            else:
                messages = data if isinstance(data, list) else [data]
                count = len(messages)
                answer = [
                    {
                        "ErrorCode": 0,
                        "Message": "OK",
                        "MessageID": str(uuid.uuid4()),
                        "To": m.get("To", ""),
                        "SubmittedAt": now,
                    }
                    for m in messages
                ]
                if not isinstance(data, list):
                    answer = answer[0]
            with lock:
                accepted[0] += count
            self._answer(answer)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    server.serve_forever()


def _start_provider(capture: Path) -> tuple[subprocess.Popen[str], int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bench.send", "--provider", str(port), str(capture)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("the fake provider did not start")
    return process, port


def _provider_accepted(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/stats")
        return int(json.loads(connection.getresponse().read())["accepted"])
    finally:
        connection.close()


def _provider_rate(port: int, body: bytes) -> float:
    """Messages/s the fake provider accepts from WORKERS clients posting ``body`` flat out."""
    per_call = len(json.loads(body)["Messages"])
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    calls = [0] * WORKERS

    def client(index: int, until: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.perf_counter() < until:
                connection.request("POST", "/email/bulk", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                calls[index] += 1
        finally:
            connection.close()

    started = time.perf_counter()
    until = started + BASELINE_SECONDS
    threads = [threading.Thread(target=client, args=(i, until)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(calls) * per_call / (time.perf_counter() - started)


# --- The pipeline -----------------------------------------------------------------------------


def _database_url() -> str:
    from django.db import connection

    d = connection.settings_dict
    auth = quote(d["USER"] or "postgres")
    if d["PASSWORD"]:
        auth += ":" + quote(d["PASSWORD"])
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _start_workers(port: int, logs: Path) -> list[tuple[subprocess.Popen[bytes], str]]:
    from django.conf import settings

    from nps_saas.celery import app

    env = {
        **os.environ,
        "NPS_MODE": "test",
        "DEBUG": "false",  # DEBUG keeps every query in memory
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_PROVIDER": "postmark",
        "POSTMARK_SERVER_TOKEN": "bench",
        "POSTMARK_USE_BULK_API": "true",
        "POSTMARK_API_URL": f"http://127.0.0.1:{port}/",
        # The shared token bucket would otherwise hold the run to the default 100/s.
        "EMAIL_RATE_PER_SECOND": "1000000",
        "EMAIL_RATE_BURST": "1000000",
        "PYTHONUNBUFFERED": "1",
    }
    queues = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)
    workers = []
    try:
        for index in range(WORKERS):
            nodename = f"bench-send-{index}-{uuid.uuid4().hex[:6]}@%h"
            with (logs / f"worker{index}.log").open("wb") as log:
                process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                    [
                        *(sys.executable, "-m", "celery", "-A", "nps_saas", "worker"),
                        *("-Q", queues, "--pool=solo", "--concurrency=1"),
                        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                        *("--loglevel=WARNING", "-n", nodename),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            workers.append((process, nodename.replace("%h", os.uname().nodename)))
        deadline = time.monotonic() + 60
        for process, hostname in workers:
            while not app.control.ping(destination=[hostname], timeout=0.5):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {hostname} did not come up; see {logs}")
    except BaseException:
        _stop_workers(workers)
        raise
    return workers


def _stop_workers(workers: list[tuple[subprocess.Popen[bytes], str]]) -> None:
    for process, _ in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, _ in workers:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _run(size: int, port: int, logs: Path) -> dict[str, float]:
    """One campaign of ``size`` invitations on two fresh workers: seconds, peak KB, counts."""
    from django.db.models import Count

    from companies.services import company_create, user_create
    from nps_saas.celery import app
    from surveys.models import Campaign, CampaignStatus, Contact, Invitation, Survey, SurveyStatus
    from surveys.services.campaigns import campaign_create
    from surveys.services.dispatch import invitations_dispatch_due

    owner = user_create(email=f"owner{size}@send.bench", password=uuid.uuid4().hex)
    company = company_create(name=f"Send bench {size}", owner=owner)
    survey = Survey.objects.create(company=company, name="Bench", status=SurveyStatus.ACTIVE)
    for start in range(0, size, 10_000):
        Contact.objects.bulk_create(
            Contact(company=company, email=f"person{i}@example.com", name=f"Person {i}")
            for i in range(start, min(size, start + 10_000))
        )
    app.control.purge()  # nothing a crashed earlier run left behind
    before = _provider_accepted(port)
    workers = _start_workers(port, logs)
    try:
        started = time.perf_counter()
        campaign = campaign_create(company=company, survey=survey, audience={"all": True})
        deadline = started + max(300.0, size / 50)
        expanded = 0.0
        while True:
            invitations_dispatch_due()  # beat's job, here once a second
            status = Campaign.objects.for_company(company).get(pk=campaign.pk).status
            if not expanded and status not in (
                CampaignStatus.SCHEDULED,
                CampaignStatus.EXPANDING,
            ):
                expanded = time.perf_counter() - started  # to the dispatcher's second
            if status == CampaignStatus.DONE:
                break
            for process, hostname in workers:
                if process.poll() is not None:
                    raise RuntimeError(f"worker {hostname} exited; see {logs}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"campaign not done after {deadline - started:.0f} s")
            time.sleep(DISPATCH_EVERY)
        seconds = time.perf_counter() - started
        peak_kb = max(_peak_kb(process.pid) for process, _ in workers)
    finally:
        _stop_workers(workers)
    by_status = dict(
        Invitation.objects.for_company(company)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "size": size,
        "seconds": seconds,
        "expanded": expanded,
        "peak_kb": peak_kb,
        "sent": by_status.get("sent", 0),
        "other": sum(n for s, n in by_status.items() if s != "sent"),
        "provider": _provider_accepted(port) - before,
    }


def main() -> None:
    size = int(os.environ.get("BENCH_INVITATIONS", "100000"))
    with tempfile.TemporaryDirectory() as tmp, bench_database():
        from nps_saas.celery import app

        app.conf.task_always_eager = False
        capture = Path(tmp) / "bulk.json"
        provider, port = _start_provider(capture)
        try:
            runs = [_run(min(SMALL, size), port, Path(tmp))]
            if size > SMALL:
                runs.append(_run(size, port, Path(tmp)))
            provider_rate = _provider_rate(port, capture.read_bytes())
        finally:
            provider.terminate()
            provider.wait(timeout=15)
    for run in runs:
        print(
            f"{int(run['size']):>7,} invitations: {run['size'] / run['seconds']:,.0f} /s "
            f"({run['seconds']:.1f} s, audience expanded after {run['expanded']:.0f} s; "
            f"{int(run['sent']):,} sent, {int(run['other']):,} not; "
            f"fake provider took {int(run['provider']):,}); "
            f"peak worker memory {run['peak_kb'] / 1024:.0f} MB"
        )
    small, large = runs[0], runs[-1]
    print(f"fake provider alone ({WORKERS} clients, bulk calls of 500): {provider_rate:,.0f} msg/s")
    print(
        f"memory {int(large['size']):,} / {int(small['size']):,} invitations: "
        f"{large['peak_kb'] / small['peak_kb']:.2f}"
    )
    print(f"ratio pipeline/provider: {large['size'] / large['seconds'] / provider_rate:.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--provider":
        serve_provider(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
