"""Fault injection: does the sending and alerting loop survive crashes and outages?

``make faults`` (``NPS_MODE=test .venv/bin/python -m bench.faults``). Not part of
``make bench``: it runs a whole production-shaped stack of its own for many minutes.

What it starts, all on loopback, all its own (never the machine's PostgreSQL on 5432 or Redis
on 6379), all stopped again at exit (also on Ctrl-C or an error):

- a PostgreSQL cluster (``initdb`` into a temporary directory, trust auth, fsync off) and a
  ``redis-server`` without persistence (``--save "" --appendonly no``: a restart loses every
  queued message, as the real fault does), each on a free port;
- a fake Postmark (``bench/_faults_provider.py``, its own process) that logs every message
  it accepts, answers Postmark's outbound message search, and can fail or answer late;
- the app with ``NPS_MODE=production`` (settings from the environment as ``.env.example``
  documents them; ``STATIC_ROOT`` and ``MEDIA_ROOT`` in the run's temporary directory):
  ``migrate``, ``collectstatic``, gunicorn (2 workers), two
  Celery workers on every queue (prefork, concurrency 1, as ``make worker``) and one beat.
  Postmark's bulk API points at the fake; ``EMAIL_REQUEST_TIMEOUT`` (the provider read
  timeout the app is to read) is set to 5 s.

Each scenario creates its own company (``companies.services``), an active email survey and
fresh contacts (``<scenario>-000123@example.test``), starts a campaign to all of them with
``campaign_create`` (in this process, against the same database and broker), injects its
fault mid-campaign, ends it, and waits until the campaign is ``done`` with no invitation
left scheduled, queued or sending, timing that from the END of the fault:

=================  ==========================================================================
kill-sending       ``kill -9`` of a worker's process group (main + pool child) during sends,
                   3 times, each restarted at once; timed from the last restart
kill-expanding     ``kill -9`` of the worker running the audience expansion (both when it
                   cannot be told) while the campaign is ``expanding``; restarted
redis-restart      Redis shut down without saving, 10 s, started again on the same port
postgres-restart   ``pg_ctl restart -m fast``
provider-5xx       the fake answers 500 to every send for 30 s
provider-timeout   the fake accepts, then answers 8 s late (after the app's 5 s read
                   timeout), for 20 s of requests; the fault ends when the last late answer
                   has gone out
answers-redis      a campaign sent in full, then 600 answers (2/3 detractors) posted by 32
                   client threads to gunicorn over ~30 s, Redis down for 10 s in the middle;
                   waits until every stored detractor answer has its follow-up
=================  ==========================================================================

Per scenario one row: recipients with exactly one message / none / more than one (the fake's
log against the company's contacts, the campaign's whole audience), invitations not final,
seconds from the end of the fault to done (or ``timeout``), lost (sending: recipients without
a message; answers: answers not stored with the score posted, whatever the HTTP answer was),
answers answered 5xx (or not at all), detractor answers without a follow-up. Then the goal: no
duplicate, nothing lost, no 5xx, every detractor followed up, done within 120 s of every
fault. A scenario whose fault found no work in flight (the campaign was already done) or
that hit its timeout misses the goal; after a timeout its campaign is cancelled and the next
scenario runs. Exit status 1 if any goal is missed. Results also go to ``var/faults.json``.

Environment: ``FAULTS_SCENARIOS`` (comma list, default all, in the order above),
``FAULTS_INVITATIONS`` (per campaign, default 20000; 2000 for a quick run), ``FAULTS_TIMEOUT``
(seconds, default 600: every wait of a scenario, e.g. from the end of its fault to done),
``FAULTS_ANSWER_INVITATIONS`` (1200), ``FAULTS_ANSWERS`` (600), ``FAULTS_ANSWER_SECONDS`` (30),
``FAULTS_PROVIDER_DELAY`` (seconds each normal provider answer takes, 0.1),
``FAULTS_PG_BIN`` (``/usr/lib/postgresql/15/bin``), ``FAULTS_JSON`` (``var/faults.json``),
``FAULTS_POSTMARK_BULK`` (``true``: campaigns through Postmark's bulk API, 500 a call),
``FAULTS_KEEP=1`` keeps the temporary directory (logs, data) for a look afterwards; when a
goal is missed the processes' logs are copied to ``var/faults-logs/`` anyway. E.g. a
quick run: ``make faults FAULTS_INVITATIONS=2000 FAULTS_SCENARIOS=provider-5xx``.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import pwd
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

if TYPE_CHECKING:
    from companies.models import Company
    from surveys.models import Survey

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "kill-sending",
    "kill-expanding",
    "redis-restart",
    "postgres-restart",
    "provider-5xx",
    "provider-timeout",
    "answers-redis",
)
TIMEOUT = float(os.environ.get("FAULTS_TIMEOUT", "600"))
INVITATIONS = int(os.environ.get("FAULTS_INVITATIONS", "20000"))
ANSWER_INVITATIONS = int(os.environ.get("FAULTS_ANSWER_INVITATIONS", "1200"))
ANSWERS = int(os.environ.get("FAULTS_ANSWERS", "600"))
ANSWER_SECONDS = float(os.environ.get("FAULTS_ANSWER_SECONDS", "30"))
ANSWER_CLIENTS = 32
PROVIDER_DELAY = float(os.environ.get("FAULTS_PROVIDER_DELAY", "0.1"))
PG_BIN = Path(os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
RESULTS = Path(os.environ.get("FAULTS_JSON", str(ROOT / "var" / "faults.json")))
LOGS_KEPT = RESULTS.parent / "faults-logs"
KEEP = os.environ.get("FAULTS_KEEP", "") not in ("", "0", "false")

GOAL_SECONDS = 120.0
READ_TIMEOUT = 5.0  # EMAIL_REQUEST_TIMEOUT given to the app
LATE_DELAY = 8.0  # the fake's late answer: longer than READ_TIMEOUT
LATE_SECONDS = 20.0
FAIL_SECONDS = 30.0
REDIS_DOWN_SECONDS = 10.0
KILLS = 3
MID = 0.2  # "mid-campaign": this share of the audience accepted by the provider
KILL_SHARES = (0.2, 0.4, 0.6)
KILL_EVERY = 10.0  # seconds between kills when sending does not progress to the next share
POLL = 0.2
TOKEN = "faults-postmark-token"  # noqa: S105 (the fake provider's, not a secret)
RESERVED_PORTS = {5432, 6379}
NOT_FINAL = ("scheduled", "queued", "sending")
TASK_LINE = re.compile(r"Task ([\w.]+)\[([0-9a-f-]+)\] (received|succeeded|retry|raised|failed)")

T = TypeVar("T")


class HarnessError(RuntimeError):
    """Something the harness needed did not happen (a process did not start, …)."""


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no {path.name})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {path.name}:\n" + "\n".join(text)


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def _wait(condition: Callable[[], bool], *, what: str, timeout: float, every: float = POLL) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise HarnessError(f"{what}: not after {timeout:.0f} s")
        time.sleep(every)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


# --- Processes --------------------------------------------------------------------------------


class Service:
    """A long-running child in a session of its own: its process group is its pid, so one
    ``killpg`` reaches the process and every child it forked (a Celery pool)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.log_offset = 0  # where the current run's output starts in the log
        self.starts = 0

    def start(self) -> None:
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the current run wrote so far."""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        """``kill -9`` of the whole process group, and wait for the process."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def stop(self, grace: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        with suppress(ProcessLookupError):  # a pool child left behind, or the process itself
            os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)


class Worker(Service):
    """A Celery worker; follows its log for the tasks it received and finished."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(name, argv, env, log)
        self._read = 0
        self.in_flight: dict[str, str] = {}  # task id -> task name
        self.received: list[str] = []  # task names received since the last mark()

    def start(self) -> None:
        super().start()
        self._read = self.log_offset
        self.in_flight.clear()

    def poll(self) -> None:
        with self.log.open("rb") as log:
            log.seek(self._read)
            chunk = log.read()
        end = chunk.rfind(b"\n") + 1
        self._read += end
        for line in chunk[:end].decode(errors="replace").splitlines():
            match = TASK_LINE.search(line)
            if not match:
                continue
            name, task_id, what = match.groups()
            if what == "received":
                self.in_flight[task_id] = name
                self.received.append(name)
            else:
                self.in_flight.pop(task_id, None)

    def mark(self) -> None:
        self.poll()
        self.received.clear()

    def busy_with(self, task: str) -> bool:
        self.poll()
        return task in self.in_flight.values()

    def wait_ready(self, timeout: float) -> None:
        _wait(
            lambda: self._check() and " ready." in self.output(),
            what=f"{self.name} ready",
            timeout=timeout,
        )

    def _check(self) -> bool:
        if not self.alive():
            raise HarnessError(f"{self.name} exited\n{_tail(self.log)}")
        return True


class Postgres:
    """A cluster of our own. As root the server runs as the ``postgres`` user (initdb
    refuses root)."""

    def __init__(self, root: Path, port: int) -> None:
        self.dir = root / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = port
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            try:
                pwd.getpwnam(self.user)
            except KeyError as err:
                raise HarnessError(
                    "running as root needs a 'postgres' user for the cluster"
                ) from err

    def _run(self, *args: str, timeout: float = TIMEOUT) -> None:
        """One of PostgreSQL's programs, its output to a file: a server that ``pg_ctl``
        starts inherits pg_ctl's output, and would hold a pipe open for as long as it runs."""
        output = self.dir / f"{args[0]}.out"
        with output.open("ab") as out:
            result = subprocess.run(  # noqa: S603 (PostgreSQL's own binaries)
                [str(PG_BIN / args[0]), *args[1:]],
                user=self.user,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if result.returncode:
            raise HarnessError(
                f"{args[0]} {args[-1]} failed ({result.returncode})\n{_tail(output, 10)}\n"
                + _tail(self.log)
            )

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data), "status", timeout=60)
        except HarnessError:
            return False
        return True

    def init(self) -> None:
        self.dir.mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            *("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(TIMEOUT))),
            *("-o", options, "start"),
        )

    def restart(self) -> None:
        self._run(
            *("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(TIMEOUT))),
            *("-m", "fast", "restart"),
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with suppress(HarnessError, subprocess.TimeoutExpired):
                self._run(
                    "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60
                )

    def create_database(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


class Redis(Service):
    def __init__(self, root: Path, port: int) -> None:
        argv = [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(root), "--daemonize", "no"),
        ]
        super().__init__("redis", argv, dict(os.environ), root / "logs" / "redis.log")
        self.port = port

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def up(self) -> None:
        self.start()
        _wait(self.ping, what="redis answering", timeout=60)

    def down(self) -> None:
        """SHUTDOWN NOSAVE (nothing kept), SIGKILL if that does not end it."""
        with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(b"SHUTDOWN NOSAVE\r\n")
            s.recv(16)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Provider(Service):
    """The fake Postmark (bench/_faults_provider.py) and its control endpoint."""

    def __init__(self, root: Path, port: int) -> None:
        self.port = port
        self.messages = root / "provider-messages.jsonl"
        argv = [
            *(sys.executable, "-m", "bench._faults_provider", str(port), str(self.messages)),
            *(TOKEN, str(PROVIDER_DELAY)),
        ]
        super().__init__("provider", argv, dict(os.environ), root / "logs" / "provider.log")

    def up(self) -> None:
        self.messages.touch()
        self.start()
        _wait(lambda: "ready" in self.output(), what="fake provider ready", timeout=60)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = json.dumps(body) if body is not None else None
            connection.request(method, path, body=payload)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def stats(self) -> dict[str, int]:
        """The fake's counters: accepted (messages), calls, failed_calls, late_calls."""
        answer = self._call("GET", "/_stats")
        return {k: int(v) for k, v in answer.items() if isinstance(v, int)}

    def accepted(self) -> int:
        return self.stats()["accepted"]

    def fault(self, fault: str, seconds: float = 0.0, delay: float = 0.0) -> None:
        self._call("POST", "/_control", {"fault": fault, "seconds": seconds, "delay": delay})

    def counts(self, addresses: set[str]) -> Counter[str]:
        """Messages accepted per address, for these addresses (lower case)."""
        found: Counter[str] = Counter()
        with self.messages.open(encoding="utf-8") as log:
            for line in log:
                if not line.strip():
                    continue
                to = str(json.loads(line)["to"]).lower()
                if to in addresses:
                    found[to] += 1
        return found


# --- The stack --------------------------------------------------------------------------------


class Stack:
    """Every process of the run; ``close()`` ends them all, whatever state they are in."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nps-faults-"))
        self.root.chmod(0o755)  # the postgres user must reach its directory
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.pg = Postgres(self.root, _free_port())
        self.redis = Redis(self.root, _free_port())
        self.provider = Provider(self.root, _free_port())
        self.web_port = _free_port()
        self.env = self._app_env()
        self.web: Service | None = None
        self.beat: Service | None = None
        self.workers: list[Worker] = []
        self.keep_logs = False  # a goal was missed: the logs go to LOGS_KEPT at the end

    def _app_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("FAULTS_", "NPS_"))}
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"):
            keep.pop(name, None)
        redis = f"redis://127.0.0.1:{self.redis.port}"
        return {
            **keep,
            "NPS_MODE": "production",
            "DJANGO_SETTINGS_MODULE": "nps_saas.settings",
            "STATIC_ROOT": str(self.root / "static"),
            "NPS_VAR_DIR": str(self.root / "var"),
            "MEDIA_ROOT": str(self.root / "media"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": f"http://127.0.0.1:{self.web_port}",
            "SECURE_SSL_REDIRECT": "false",  # plain http on loopback, as docker-compose.yml
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg.port}/nps",
            "REDIS_URL": f"{redis}/0",
            "CELERY_BROKER_URL": f"{redis}/1",
            "EMAIL_PROVIDER": "postmark",
            "POSTMARK_SERVER_TOKEN": TOKEN,
            "POSTMARK_API_URL": f"http://127.0.0.1:{self.provider.port}/",
            "POSTMARK_USE_BULK_API": os.environ.get("FAULTS_POSTMARK_BULK", "true"),
            "ANYMAIL_WEBHOOK_SECRET": f"faults:{secrets.token_urlsafe(24)}",
            "EMAIL_REQUEST_TIMEOUT": str(READ_TIMEOUT),
            # The shared bucket would hold a 20,000-message campaign to the default 100/s.
            "EMAIL_RATE_PER_SECOND": "100000",
            "EMAIL_RATE_BURST": "100000",
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    def _manage(self, *args: str) -> None:
        log = self.logs / f"manage-{args[0]}.log"
        with log.open("wb") as out:
            result = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT,
                check=False,
            )
        if result.returncode:
            raise HarnessError(f"manage.py {' '.join(args)} failed\n{_tail(log)}")

    def up(self) -> None:
        _say(f"temporary directory {self.root}")
        self.pg.init()
        self.pg.start()
        self.pg.create_database("nps")
        _say(f"PostgreSQL on 127.0.0.1:{self.pg.port}")
        self.redis.up()
        _say(f"Redis on 127.0.0.1:{self.redis.port}")
        self.provider.up()
        _say(f"fake Postmark on 127.0.0.1:{self.provider.port}")
        self._manage("migrate", "--no-input")
        self._manage("collectstatic", "--no-input")
        bin_dir = Path(sys.executable).parent
        self.web = Service(
            "gunicorn",
            [
                str(bin_dir / "gunicorn"),
                "nps_saas.wsgi:application",
                *f"--workers 2 --bind 127.0.0.1:{self.web_port} --timeout 120".split(),
                *["--access-logfile", "-", "--error-logfile", "-"],
            ],
            self.env,
            self.logs / "gunicorn.log",
        )
        self.web.start()
        queues = "default,sends,alerts,rollups"
        for index in range(2):
            self.workers.append(
                Worker(
                    f"worker{index}",
                    [
                        *(sys.executable, "-m", "celery", "-A", "nps_saas", "worker"),
                        *f"-Q {queues} -n faults{index}@%h --concurrency 1".split(),
                        *["--loglevel", "INFO"],
                    ],
                    self.env,
                    self.logs / f"worker{index}.log",
                )
            )
        for worker in self.workers:
            worker.start()
        self.beat = Service(
            "beat",
            [
                *(sys.executable, "-m", "celery", "-A", "nps_saas", "beat", "--loglevel", "INFO"),
                *("--schedule", str(self.root / "celerybeat-schedule")),
            ],
            self.env,
            self.logs / "beat.log",
        )
        self.beat.start()
        for worker in self.workers:
            worker.wait_ready(TIMEOUT)
        _wait(self._web_ready, what="gunicorn answering /healthz", timeout=TIMEOUT)
        _wait(
            lambda: self.beat is not None and "Starting..." in self.beat.output(),
            what="beat started",
            timeout=TIMEOUT,
        )
        _say(f"app up: gunicorn on 127.0.0.1:{self.web_port}, 2 workers, beat")

    def _web_ready(self) -> bool:
        assert self.web is not None
        if not self.web.alive():
            raise HarnessError(f"gunicorn exited\n{_tail(self.web.log)}")
        try:
            return http_request(self.web_port, "GET", "/healthz", timeout=10)[0] == 200
        except OSError:
            return False

    def heal(self) -> None:
        """Between scenarios: no fault left on, every service up."""
        if not self.provider.alive():
            _say(f"the fake provider was not running: restarted\n{_tail(self.provider.log, 15)}")
            self.provider.up()
        self.provider.fault("ok")
        if not self.pg.running():
            _say("PostgreSQL was not running: started")
            self.pg.start()
        if not self.redis.ping():
            self.redis.up()
        for worker in self.workers:
            if not worker.alive():
                _say(f"{worker.name} was not running: restarted\n{_tail(worker.log, 15)}")
                worker.start()
                worker.wait_ready(TIMEOUT)
        for service in (self.web, self.beat):
            if service is not None and not service.alive():
                _say(f"{service.name} was not running: restarted\n{_tail(service.log, 15)}")
                service.start()

    def tails(self, lines: int = 15) -> str:
        services: list[Service] = [*self.workers]
        services += [s for s in (self.beat, self.web) if s is not None]
        return "\n".join(_tail(s.log, lines) for s in services)

    def close(self) -> None:
        with suppress(Exception):
            from django.db import connections

            connections.close_all()
        for service in [self.web, self.beat, *self.workers, self.provider, self.redis]:
            if service is not None:
                with suppress(Exception):
                    service.stop()
        self.pg.stop()
        if self.keep_logs:
            shutil.rmtree(LOGS_KEPT, ignore_errors=True)
            LOGS_KEPT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(self.logs, LOGS_KEPT)
            with suppress(OSError):
                shutil.copy2(self.pg.log, LOGS_KEPT / "postgres.log")
            _say(f"logs of the run kept in {LOGS_KEPT}")
        if KEEP:
            _say(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_stack() -> Iterator[Stack]:
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C, even where the shell started us with SIGINT ignored (a background job).
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = Stack()
    try:
        stack.up()
        _django(stack.env)
        yield stack
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt | SystemExit):
            _say(f"interrupted ({type(err).__name__}): stopping everything")
        raise
    finally:
        stack.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _django(env: dict[str, str]) -> None:
    """This process talks to the same database and broker as the app (its own code)."""
    os.environ.update({**env, "LOG_LEVEL": "WARNING"})
    import django

    django.setup()


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# --- The app's data (its own services, in this process) --------------------------------------


def _service(name: str) -> Callable[..., Any]:
    """A surveys service by name, wherever the package keeps it (it is being split up)."""
    for module in ("surveys.services.campaigns", "surveys.services"):
        with suppress(ImportError):
            found = getattr(importlib.import_module(module), name, None)
            if callable(found):
                return found
    raise HarnessError(f"no surveys service {name}")


def _db(read: Callable[[], T], *, deadline: float) -> T:
    """Run a read; while the database is away (a restart), reconnect and try again."""
    from django.db import InterfaceError, OperationalError, connection

    while True:
        try:
            return read()
        except (OperationalError, InterfaceError):
            with suppress(Exception):
                connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@dataclass
class Tenant:
    """One scenario's company, survey and contacts' addresses."""

    company: Company
    survey: Survey
    addresses: set[str]


def _tenant(name: str, size: int) -> Tenant:
    from companies.services import company_create, user_create
    from surveys.models import Contact, Survey, SurveyStatus

    owner = user_create(email=f"owner-{name}@faults.test", password=secrets.token_urlsafe(18))
    company = company_create(name=f"Faults {name}", owner=owner)
    survey = Survey.objects.create(
        company=company, name=f"Faults {name}", status=SurveyStatus.ACTIVE
    )
    addresses = [f"{name}-{i:06d}@example.test" for i in range(size)]
    for start in range(0, size, 10_000):
        Contact.objects.bulk_create(
            Contact(company=company, email=address, name=f"Person {start + i}")
            for i, address in enumerate(addresses[start : start + 10_000])
        )
    return Tenant(company=company, survey=survey, addresses=set(addresses))


@dataclass
class Result:
    """One scenario's row (see the module docstring); ``misses()`` against the goal."""

    scenario: str
    size: int
    messages: int = 0  # accepted by the provider for the audience's addresses
    one: int = 0
    zero: int = 0
    more: int = 0
    not_final: int = 0
    seconds: float | None = None  # from the end of the fault to done; None: timeout
    answers_lost: int | None = None
    answers_5xx: int | None = None
    no_followup: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    landed: bool = True  # the fault happened while there was work in flight
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def misses(self) -> list[str]:
        missed = []
        if self.error:
            missed.append("harness error")
            return missed
        if not self.landed:
            missed.append("fault did not land mid-work")
        if self.more:
            missed.append(f"{self.more} duplicated")
        if self.zero:
            missed.append(f"{self.zero} recipients without a message")
        if self.not_final:
            missed.append(f"{self.not_final} invitations not final")
        if self.answers_lost:
            missed.append(f"{self.answers_lost} answers lost")
        if self.answers_5xx:
            missed.append(f"{self.answers_5xx} answer 5xx")
        if self.no_followup:
            missed.append(f"{self.no_followup} without follow-up")
        if self.seconds is None or self.seconds > GOAL_SECONDS:
            missed.append(f"not done within {GOAL_SECONDS:.0f} s")
        return missed


class CampaignRun:
    """One scenario's campaign, watched from the provider's counter and the database."""

    def __init__(self, stack: Stack, tenant: Tenant, result: Result) -> None:
        self.stack, self.tenant, self.result = stack, tenant, result
        self.size = len(tenant.addresses)
        self.accepted_before = stack.provider.accepted()
        for worker in stack.workers:
            worker.mark()
        campaign = _service("campaign_create")(
            company=tenant.company, survey=tenant.survey, audience={"all": True}
        )
        self.pk: int = campaign.pk
        self.started = time.monotonic()
        self.deadline = self.started + TIMEOUT

    def accepted(self) -> int:
        return self.stack.provider.accepted() - self.accepted_before

    def state(self, deadline: float | None = None) -> tuple[str, int]:
        """The campaign's status and how many contacts its expansion went through so far."""
        from surveys.models import Campaign

        def read() -> tuple[str, int]:
            campaign = Campaign.objects.for_company(self.tenant.company).get(pk=self.pk)
            return str(campaign.status), int(campaign.targeted)

        return _db(read, deadline=deadline or self.deadline)

    def pending(self, deadline: float | None = None) -> int:
        from surveys.models import Invitation

        return _db(
            lambda: (
                Invitation.objects.for_company(self.tenant.company)
                .filter(campaign_id=self.pk, status__in=NOT_FINAL)
                .count()
            ),
            deadline=deadline or self.deadline,
        )

    def wait_accepted(self, share: float, *, at_most: float | None = None) -> bool:
        """Until ``share`` of the audience was accepted (True), the campaign is done (False)
        or ``at_most`` seconds passed (True: go on anyway)."""
        until = time.monotonic() + at_most if at_most is not None else self.deadline
        while self.accepted() < share * self.size:
            if self.state()[0] in ("done", "cancelled"):
                return False
            if time.monotonic() > until:
                if at_most is not None:
                    return True
                raise HarnessError(f"not {share:.0%} accepted after {TIMEOUT:.0f} s")
            time.sleep(POLL / 2)
        return True

    def wait_done(self, fault_end: float) -> None:
        deadline = fault_end + TIMEOUT
        while True:
            status = self.state(deadline + 60)[0]
            if status == "done" and self.pending(deadline + 60) == 0:
                self.result.seconds = max(0.0, time.monotonic() - fault_end)
                return
            if time.monotonic() > deadline:
                self.result.notes.append(f"campaign {status} {TIMEOUT:.0f} s after the fault")
                _say(f"timeout: campaign {status}, {self.pending(deadline + 60)} not final")
                print(self.stack.tails(), flush=True)
                return
            time.sleep(1)

    def measure(self) -> None:
        from django.db.models import Count

        from surveys.models import Campaign, Invitation

        result, company = self.result, self.tenant.company
        deadline = time.monotonic() + TIMEOUT
        if result.seconds is None:
            cancelled = _db(
                lambda: _service("campaign_cancel")(
                    company=company, campaign=Campaign.objects.for_company(company).get(pk=self.pk)
                ),
                deadline=deadline,
            )
            result.notes.append(f"cancelled after the timeout ({cancelled} still scheduled)")
        counts = self.stack.provider.counts(self.tenant.addresses)
        result.messages = sum(counts.values())
        result.one = sum(1 for a in self.tenant.addresses if counts[a] == 1)
        result.zero = sum(1 for a in self.tenant.addresses if counts[a] == 0)
        result.more = sum(1 for a in self.tenant.addresses if counts[a] > 1)
        result.statuses = _db(
            lambda: dict(
                Invitation.objects.for_company(company)
                .filter(campaign_id=self.pk)
                .values_list("status")
                .annotate(n=Count("id"))
                .order_by()
            ),
            deadline=deadline,
        )
        result.not_final = sum(result.statuses.get(s, 0) for s in NOT_FINAL)
        invited = sum(result.statuses.values())
        if invited != self.size:
            result.notes.append(f"{invited} invitations for {self.size} contacts")


# --- Scenarios --------------------------------------------------------------------------------


Inject = Callable[[Stack, CampaignRun], float]  # injects and ends the fault; returns its end


def _sending(stack: Stack, name: str, inject: Inject) -> Result:
    result = Result(name, INVITATIONS)
    tenant = _tenant(name, INVITATIONS)
    run = CampaignRun(stack, tenant, result)
    try:
        fault_end = inject(stack, run)
    finally:
        stack.provider.fault("ok")
    _say(f"{name}: fault over after {fault_end - run.started:.1f} s; waiting for done")
    run.wait_done(fault_end)
    run.measure()
    return result


def _restart(stack: Stack, worker: Worker) -> float:
    """Kill -9 the worker's process group and start it again; returns the restart time."""
    worker.kill()
    restarted = time.monotonic()
    worker.start()
    worker.wait_ready(TIMEOUT)
    return restarted


def _busy_senders(stack: Stack, *, within: float) -> list[Worker]:
    """The workers with a send task in flight, waiting up to ``within`` s for one."""
    until = time.monotonic() + within
    while True:
        busy = [w for w in stack.workers if w.busy_with("surveys.send_invitations")]
        if busy or time.monotonic() > until:
            return busy
        time.sleep(0.05)


def _kill_sending(stack: Stack, run: CampaignRun) -> float:
    last = time.monotonic()
    in_flight = 0
    for index, share in enumerate(KILL_SHARES[:KILLS]):
        wait = None if index == 0 else KILL_EVERY
        if not run.wait_accepted(share, at_most=wait):
            run.result.landed = index > 0
            run.result.notes.append(f"campaign done after {index} of {KILLS} kills")
            break
        busy = _busy_senders(stack, within=3.0)
        # Both workers take turns when both are busy (each kill hits another process).
        target = busy[index % len(busy)] if busy else stack.workers[index % len(stack.workers)]
        _say(
            f"kill -9 {target.name} ({run.accepted()} accepted"
            f"{', in a send task' if busy else ', no send task seen'})"
        )
        in_flight += bool(busy)
        last = _restart(stack, target)
    run.result.notes.append(f"{in_flight} of the kills hit a send task in flight")
    return last


def _kill_expanding(stack: Stack, run: CampaignRun) -> float:
    seen_at: float | None = None
    targets: list[Worker] = []
    while time.monotonic() < run.deadline:
        for worker in stack.workers:
            worker.poll()
            if "surveys.expand_campaign" in worker.received and worker not in targets:
                targets.append(worker)
                seen_at = seen_at or time.monotonic()
        status, expanded = run.state()
        if status != "expanding":
            run.result.landed = False
            run.result.notes.append(f"expansion over ({status}) before a kill")
            return time.monotonic()
        if targets and (expanded > 0 or time.monotonic() - (seen_at or 0) > 1.0):
            break
        if not targets and expanded > 0:
            targets = list(stack.workers)  # cannot tell which: both
            break
        time.sleep(0.05)
    else:
        raise HarnessError(f"the expansion did not start within {TIMEOUT:.0f} s")
    names = ", ".join(w.name for w in targets)
    _say(f"kill -9 {names} while expanding ({expanded} of {run.size} contacts done)")
    for worker in targets:
        worker.kill()
    restarted = time.monotonic()
    for worker in targets:
        worker.start()
    for worker in targets:
        worker.wait_ready(TIMEOUT)
    return restarted


def _redis_restart(stack: Stack, run: CampaignRun) -> float:
    run.result.landed = run.wait_accepted(MID)
    _say(f"redis down ({run.accepted()} accepted)")
    stack.redis.down()
    time.sleep(REDIS_DOWN_SECONDS)
    stack.redis.up()
    return time.monotonic()


def _postgres_restart(stack: Stack, run: CampaignRun) -> float:
    run.result.landed = run.wait_accepted(MID)
    _say(f"pg_ctl restart -m fast ({run.accepted()} accepted)")
    stack.pg.restart()
    return time.monotonic()


def _provider_5xx(stack: Stack, run: CampaignRun) -> float:
    reached = run.wait_accepted(MID)
    _say(f"provider answers 500 for {FAIL_SECONDS:.0f} s ({run.accepted()} accepted)")
    before = stack.provider.stats()["failed_calls"]
    stack.provider.fault("5xx", FAIL_SECONDS)
    time.sleep(FAIL_SECONDS)
    stack.provider.fault("ok")
    failed = stack.provider.stats()["failed_calls"] - before
    run.result.notes.append(f"{failed} provider calls answered 500")
    run.result.landed = reached and failed > 0
    return time.monotonic()


def _provider_timeout(stack: Stack, run: CampaignRun) -> float:
    reached = run.wait_accepted(MID)
    _say(
        f"provider answers {LATE_DELAY:.0f} s late for {LATE_SECONDS:.0f} s "
        f"({run.accepted()} accepted)"
    )
    before = stack.provider.stats()["late_calls"]
    stack.provider.fault("late", LATE_SECONDS, LATE_DELAY)
    time.sleep(LATE_SECONDS)
    stack.provider.fault("ok")
    time.sleep(LATE_DELAY)  # the last late answer goes out
    late = stack.provider.stats()["late_calls"] - before
    run.result.notes.append(f"{late} provider calls accepted and answered {LATE_DELAY:.0f} s late")
    run.result.landed = reached and late > 0
    note = _read_timeout_note()
    if note:
        run.result.notes.append(note)
    return time.monotonic()


def _read_timeout_note() -> str:
    """Whether the app's provider read timeout is short enough for the late answer to bite."""
    from django.conf import settings

    value = getattr(settings, "EMAIL_REQUEST_TIMEOUT", None)
    if value is None:
        return (
            "the app has no EMAIL_REQUEST_TIMEOUT setting: its provider read timeout is "
            f"anymail's default (30 s), longer than the {LATE_DELAY:.0f} s late answer"
        )
    if float(value) >= LATE_DELAY:
        return f"EMAIL_REQUEST_TIMEOUT is {value} s: the {LATE_DELAY:.0f} s late answer is in time"
    return ""


@dataclass
class Answers:
    """The answers of the answers-redis scenario: what was posted and what came back."""

    plan: list[tuple[int, str, int]]  # (invitation pk, token, score)
    statuses: dict[int, int] = field(default_factory=dict)  # pk -> HTTP status, 0: none
    while_down: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _answer_plan(tenant: Tenant, campaign_pk: int, result: Result) -> Answers:
    """ANSWERS sent invitations, two in three answered as detractors (0-6), the others as
    passives and promoters (7-10)."""
    from surveys.models import Invitation
    from surveys.tokens import token_for

    rows = list(
        Invitation.objects.for_company(tenant.company)
        .filter(campaign_id=campaign_pk, status="sent")
        .order_by("pk")
        .values_list("pk", "token_nonce")[:ANSWERS]
    )
    if len(rows) < ANSWERS:
        result.notes.append(f"only {len(rows)} sent invitations to answer")
    return Answers(
        plan=[
            (pk, token_for(nonce), i % 7 if i % 3 != 2 else 7 + i % 4)
            for i, (pk, nonce) in enumerate(rows)
        ]
    )


def _post_answers(
    stack: Stack, answers: Answers, redis_down: threading.Event
) -> list[threading.Thread]:
    """ANSWER_CLIENTS threads posting the plan's answers (the form without JavaScript, CSRF
    cookie and field), spread evenly over ANSWER_SECONDS."""
    csrf = secrets.token_hex(16)  # 32 characters: Django takes it as cookie and field alike
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf}",
    }
    jobs: queue.SimpleQueue[tuple[float, int, str, int]] = queue.SimpleQueue()
    started = time.monotonic()
    for i, (pk, token, score) in enumerate(answers.plan):
        jobs.put((started + i * ANSWER_SECONDS / max(1, len(answers.plan)), pk, token, score))

    def client() -> None:
        while True:
            try:
                at, pk, token, score = jobs.get_nowait()
            except queue.Empty:
                return
            time.sleep(max(0.0, at - time.monotonic()))
            body = urlencode({"csrfmiddlewaretoken": csrf, "score": score, "comment": "faults"})
            down = redis_down.is_set()
            try:
                status = http_request(
                    stack.web_port, "POST", f"/r/{token}/", body=body, headers=headers
                )[0]
            except OSError:
                status = 0  # no answer at all
            with answers.lock:
                answers.statuses[pk] = status
                answers.while_down += down

    threads = [threading.Thread(target=client, daemon=True) for _ in range(ANSWER_CLIENTS)]
    for thread in threads:
        thread.start()
    return threads


def _answers_check(tenant: Tenant, answers: Answers, result: Result) -> None:
    from responses.models import Response

    stored = dict(
        Response.objects.for_company(tenant.company)
        .filter(survey=tenant.survey)
        .values_list("invitation_id", "score")
    )
    statuses = answers.statuses
    lost = [pk for pk, _token, score in answers.plan if stored.get(pk) != score]
    result.answers_lost = len(lost)
    result.answers_5xx = sum(1 for pk, _t, _s in answers.plan if not 0 < statuses.get(pk, 0) < 500)
    accepted_lost = sum(1 for pk in lost if 200 <= statuses.get(pk, 0) < 400)
    by_status = Counter(statuses.values())
    result.notes.append(
        "answer HTTP statuses "
        + ", ".join(f"{k or 'none'}: {v}" for k, v in sorted(by_status.items()))
    )
    if accepted_lost:
        result.notes.append(f"{accepted_lost} answers accepted (2xx/3xx) but not stored")


def _answers_redis(stack: Stack) -> Result:
    from responses.models import Response

    name = "answers-redis"
    result = Result(name, ANSWER_INVITATIONS)
    tenant = _tenant(name, ANSWER_INVITATIONS)
    run = CampaignRun(stack, tenant, result)
    run.wait_done(run.started)
    sent_in = result.seconds
    run.measure()
    if sent_in is None:
        result.notes.append("the campaign before the answers did not finish")
    result.seconds = None
    answers = _answer_plan(tenant, run.pk, result)
    if not answers.plan:
        result.error = "no sent invitation to answer (the campaign before the answers failed)"
        return result
    redis_down = threading.Event()
    threads = _post_answers(stack, answers, redis_down)
    time.sleep(ANSWER_SECONDS / 3)
    _say(f"{name}: redis down during the answers ({len(answers.statuses)} answered so far)")
    redis_down.set()
    stack.redis.down()
    time.sleep(REDIS_DOWN_SECONDS)
    stack.redis.up()
    redis_down.clear()
    fault_end = time.monotonic()
    _say(f"{name}: redis up again")
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    result.landed = answers.while_down > 0
    result.notes.append(f"{answers.while_down} answers posted while Redis was down")

    def without_followup() -> int:
        return (
            Response.objects.for_company(tenant.company)
            .filter(survey=tenant.survey, score__lte=6, followups__isnull=True)
            .count()
        )

    deadline = fault_end + TIMEOUT
    while (missing := _db(without_followup, deadline=deadline + 60)) > 0:
        if time.monotonic() > deadline:
            result.notes.append(f"{missing} detractors without a follow-up after {TIMEOUT:.0f} s")
            print(stack.tails(), flush=True)
            break
        time.sleep(1)
    else:
        result.seconds = max(0.0, time.monotonic() - fault_end)
    result.no_followup = _db(without_followup, deadline=time.monotonic() + TIMEOUT)
    _answers_check(tenant, answers, result)
    return result


def _run_scenario(stack: Stack, name: str) -> Result:
    injects: dict[str, Inject] = {
        "kill-sending": _kill_sending,
        "kill-expanding": _kill_expanding,
        "redis-restart": _redis_restart,
        "postgres-restart": _postgres_restart,
        "provider-5xx": _provider_5xx,
        "provider-timeout": _provider_timeout,
    }
    if name == "answers-redis":
        return _answers_redis(stack)
    return _sending(stack, name, injects[name])


# --- Report -----------------------------------------------------------------------------------

COLUMNS = (
    "scenario",
    "1 msg",
    "0 msg",
    ">1 msg",
    "not final",
    "s to done",
    "lost",
    "5xx",
    "no follow-up",
    "goal",
)


def _row(result: Result) -> list[str]:
    def opt(value: int | None) -> str:
        return "-" if value is None else str(value)

    seconds = "timeout" if result.seconds is None else f"{result.seconds:.1f}"
    if result.error:
        seconds = "error"
    misses = result.misses()
    return [
        result.scenario,
        str(result.one),
        str(result.zero),
        str(result.more),
        str(result.not_final),
        seconds,
        opt(result.answers_lost if result.answers_lost is not None else result.zero),
        opt(result.answers_5xx),
        opt(result.no_followup),
        "met" if not misses else "MISSED",
    ]


def _table(results: list[Result]) -> str:
    rows = [list(COLUMNS), *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    chosen = [s.strip() for s in os.environ.get("FAULTS_SCENARIOS", "").split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    names = list(dict.fromkeys(chosen)) or list(SCENARIOS)  # each once: its company is unique
    results: list[Result] = []
    started = time.monotonic()
    with running_stack() as stack:
        for name in names:
            _say(
                f"== {name} ({INVITATIONS if name != 'answers-redis' else ANSWER_INVITATIONS} "
                "invitations)"
            )
            try:
                stack.heal()
                result = _run_scenario(stack, name)
            except Exception as err:  # reported; the next scenario still runs
                result = Result(name, INVITATIONS, error=f"{type(err).__name__}: {err}")
                result.error = result.error.splitlines()[0][:300]
                print(f"{err}\n{traceback.format_exc()}\n{stack.tails()}", flush=True)
            results.append(result)
            _say(f"{name}: {' | '.join(_row(result))}")
            for note in result.notes:
                _say(f"  {note}")
            if result.misses():
                stack.keep_logs = True
                if result.seconds is not None:  # a timeout printed them already
                    print(stack.tails(), flush=True)
    print()
    print(_table(results))
    for result in results:
        for note in ([result.error] if result.error else []) + result.notes:
            print(f"  {result.scenario}: {note}")
    missed = {r.scenario: r.misses() for r in results if r.misses()}
    print(
        f"goal (0 duplicates, 0 lost, 0 answer 5xx, 0 detractors without a follow-up, done "
        f"within {GOAL_SECONDS:.0f} s of every fault): "
        + (
            "met"
            if not missed
            else "MISSED — " + "; ".join(f"{k}: {', '.join(v)}" for k, v in missed.items())
        )
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "invitations": INVITATIONS,
                "answer_invitations": ANSWER_INVITATIONS,
                "answers": ANSWERS,
                "timeout_seconds": TIMEOUT,
                "goal_seconds": GOAL_SECONDS,
                "run_seconds": round(time.monotonic() - started, 1),
                "met": not missed,
                "scenarios": [{**asdict(r), "misses": r.misses()} for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {RESULTS}")
    return 1 if missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
