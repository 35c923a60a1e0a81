"""The fake Postmark of ``bench/faults.py``: its own process, with faults to switch on.

Serves Postmark's send API on 127.0.0.1 (``/email``, ``/email/batch``, ``/email/bulk``, as
``bench/send.py``'s fake does) and appends every message it ACCEPTS to a log file, one JSON
line each: ``{"to": address, "metadata": {...}, "message_id": ..., "endpoint": ..., "t": ...}``.
It also answers Postmark's outbound message search, ``GET /messages/outbound?count=N&offset=M``
with at most one ``metadata_<key>=<value>`` (and/or ``recipient=``) filter, newest first, the
shape of Postmark's answer (``TotalCount``, ``Messages`` with ``MessageID``, ``Recipients``,
``To``, ``Metadata``, ``Status``, ``ReceivedAt``, ``Subject``), so a client can find out whether
a call whose answer it never got was accepted.

Faults (``POST /_control`` with JSON ``{"fault": "ok" | "5xx" | "late", "seconds": N,
"delay": D}``): ``5xx`` answers HTTP 500 to every send for N seconds and accepts nothing;
``late`` accepts (logs) the messages of every send arriving in the next N seconds, then sleeps
D seconds before answering, longer than the client's read timeout. ``GET /_stats`` gives the
counters. Every send needs the ``X-Postmark-Server-Token`` given on the command line.

Run: ``python -m bench._faults_provider PORT LOG_FILE TOKEN [DELAY]`` (DELAY: seconds each
normal answer takes, default 0); it prints ``ready`` once listening.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEND_PATHS = {"email": "email", "email/batch": "batch", "email/bulk": "bulk"}
MAX_COUNT = 500  # Postmark's own cap per search page


@dataclass(frozen=True)
class _Message:
    """One accepted message to one recipient."""

    message_id: str
    address: str
    name: str
    metadata: dict[str, str]
    subject: str
    sender: str
    received_at: str
    stream: str


class _State:
    """Everything the handler threads share, behind one lock."""

    def __init__(self, log: Path, token: str, delay: float) -> None:
        self.lock = threading.Lock()
        self.log = log.open("a", encoding="utf-8")
        self.token = token
        self.delay = delay
        self.messages: list[_Message] = []
        self.by_metadata: dict[tuple[str, str], list[int]] = {}
        self.by_recipient: dict[str, list[int]] = {}
        self.fault = "ok"
        self.fault_until = 0.0
        self.late_delay = 0.0
        self.counters = {"accepted": 0, "calls": 0, "failed_calls": 0, "late_calls": 0}

    def current_fault(self) -> tuple[str, float]:
        with self.lock:
            if self.fault != "ok" and time.monotonic() < self.fault_until:
                return self.fault, self.late_delay
            self.fault = "ok"
            return "ok", 0.0

    def set_fault(self, fault: str, seconds: float, delay: float) -> None:
        with self.lock:
            self.fault = fault
            self.fault_until = time.monotonic() + seconds
            self.late_delay = delay

    def accept(self, endpoint: str, messages: list[dict[str, Any]]) -> list[_Message]:
        """Record accepted messages (log line each, flushed); one record per recipient."""
        received = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        records = []
        lines = []
        for message in messages:
            metadata = message.get("Metadata") or {}
            for name, address in getaddresses([str(message.get("To", ""))]):
                if not address:
                    continue
                record = _Message(
                    message_id=str(uuid.uuid4()),
                    address=address,
                    name=name,
                    metadata={str(k): str(v) for k, v in metadata.items()},
                    subject=str(message.get("Subject", "")),
                    sender=str(message.get("From", "")),
                    received_at=received,
                    stream=str(message.get("MessageStream", "outbound")),
                )
                records.append(record)
                line = {
                    "to": address,
                    "metadata": record.metadata,
                    "message_id": record.message_id,
                    "endpoint": endpoint,
                    "t": time.time(),
                }
                lines.append(json.dumps(line))
        with self.lock:
            for record in records:
                index = len(self.messages)
                self.messages.append(record)
                for key, value in record.metadata.items():
                    self.by_metadata.setdefault((key, value), []).append(index)
                self.by_recipient.setdefault(record.address.lower(), []).append(index)
            self.counters["accepted"] += len(records)
            if lines:
                self.log.write("\n".join(lines) + "\n")
                self.log.flush()
        return records

    def search(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        try:
            count = int(query.get("count", ["100"])[0])
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            return 422, {"ErrorCode": 1, "Message": "count and offset must be integers"}
        if not 1 <= count <= MAX_COUNT or offset < 0:
            return 422, {"ErrorCode": 1, "Message": f"count must be 1..{MAX_COUNT}"}
        filters = {
            k[len("metadata_") :]: v[0] for k, v in query.items() if k.startswith("metadata_")
        }
        if len(filters) > 1:
            return 422, {"ErrorCode": 1, "Message": "one metadata filter at a time"}
        with self.lock:
            candidates: list[int] | None = None
            for key, value in filters.items():
                candidates = list(self.by_metadata.get((key, value), []))
            if "recipient" in query:
                mine = self.by_recipient.get(query["recipient"][0].lower(), [])
                candidates = (
                    list(mine) if candidates is None else sorted(set(candidates) & set(mine))
                )
            if candidates is None:
                candidates = list(range(len(self.messages)))
            newest_first = [self.messages[i] for i in reversed(candidates)]
        page = newest_first[offset : offset + count]
        return 200, {
            "TotalCount": len(newest_first),
            "Messages": [
                {
                    "MessageID": m.message_id,
                    "Recipients": [m.address],
                    "To": [{"Email": m.address, "Name": m.name}],
                    "Cc": [],
                    "Bcc": [],
                    "From": m.sender,
                    "Subject": m.subject,
                    "Metadata": m.metadata,
                    "Status": "Sent",
                    "ReceivedAt": m.received_at,
                    "MessageStream": m.stream,
                    "Tag": "",
                    "Attachments": [],
                    "TrackOpens": False,
                    "TrackLinks": "None",
                }
                for m in page
            ],
        }


def serve(port: int, log: Path, token: str, delay: float = 0.0) -> None:
    state = _State(log, token, delay)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (its read timeout): that is the fault

        def _authorized(self) -> bool:
            if self.headers.get("X-Postmark-Server-Token") == state.token:
                return True
            self._answer(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
            return False

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_stats":
                fault, _delay = state.current_fault()
                with state.lock:
                    stats = {**state.counters, "fault": fault}
                self._answer(200, stats)
            elif url.path.rstrip("/") == "/messages/outbound":
                if self._authorized():
                    self._answer(*state.search(parse_qs(url.query)))
            else:
                self._answer(404, {"ErrorCode": 404, "Message": "not found"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            path = urlsplit(self.path).path.strip("/")
            if path == "_control":
                order = json.loads(raw or b"{}")
                state.set_fault(
                    str(order.get("fault", "ok")),
                    float(order.get("seconds", 0)),
                    float(order.get("delay", 0)),
                )
                self._answer(200, {"fault": order.get("fault", "ok")})
                return
            endpoint = SEND_PATHS.get(path)
            if endpoint is None:
                self._answer(404, {"ErrorCode": 404, "Message": "not found"})
                return
            if not self._authorized():
                return
            fault, late_delay = state.current_fault()
            with state.lock:
                state.counters["calls"] += 1
                if fault == "5xx":
                    state.counters["failed_calls"] += 1
                elif fault == "late":
                    state.counters["late_calls"] += 1
            if fault == "5xx":
                self._answer(500, {"ErrorCode": 0, "Message": "Internal server error (injected)"})
                return
            data = json.loads(raw)
            if endpoint == "bulk":
                messages = [{**data, **m} for m in data.get("Messages", [])]
            else:
                messages = data if isinstance(data, list) else [data]
            records = state.accept(endpoint, messages)
            time.sleep(late_delay if fault == "late" else state.delay)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            answer: Any
            if endpoint == "bulk":
                answer = {
                    "ID": str(uuid.uuid4()),
                    "Status": "Accepted",
                    "SubmittedAt": now,
                    "PercentageCompleted": 0.0,
                    "TotalMessages": len(records),
                }
            else:
                answer = [
                    {
                        "ErrorCode": 0,
                        "Message": "OK",
                        "MessageID": r.message_id,
                        "To": r.address,
                        "SubmittedAt": now,
                    }
                    for r in records
                ]
                if not isinstance(data, list):
                    answer = answer[0] if answer else {"ErrorCode": 300, "Message": "No To"}
            self._answer(200, answer)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(
        int(sys.argv[1]),
        Path(sys.argv[2]),
        sys.argv[3],
        float(sys.argv[4]) if len(sys.argv) > 4 else 0.0,
    )
