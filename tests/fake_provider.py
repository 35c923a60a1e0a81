"""A fake Postmark on loopback, for tests whose sender is another process (a real worker).

``LoopbackPostmark()`` serves ``/email``, ``/email/batch`` and ``/email/bulk`` from a thread
of the test process on 127.0.0.1 and records every recipient it accepted; point a worker at
it with ``POSTMARK_API_URL=fake.url``. ``delay`` slows each answer (seconds), which keeps
concurrent senders overlapping. Use it as a context manager.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackPostmark:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.recipients: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __enter__(self) -> LoopbackPostmark:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, addresses: list[str]) -> None:
        with self._lock:
            self.calls += 1
            self.recipients += addresses

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                time.sleep(fake.delay)
                now = "2026-01-01T00:00:00Z"
                answer: Any
                if self.path.rstrip("/").endswith("email/bulk"):
                    fake._record([m["To"] for m in data["Messages"]])
                    answer = {
                        "ID": str(uuid.uuid4()),
                        "Status": "Accepted",
                        "SubmittedAt": now,
                        "PercentageCompleted": 0.0,
                        "TotalMessages": len(data["Messages"]),
                    }
                else:
                    messages = data if isinstance(data, list) else [data]
                    fake._record([m["To"] for m in messages])
                    answer = [
                        {
                            "ErrorCode": 0,
                            "Message": "OK",
                            "MessageID": str(uuid.uuid4()),
                            "To": m["To"],
                            "SubmittedAt": now,
                        }
                        for m in messages
                    ]
                    if not isinstance(data, list):
                        answer = answer[0]
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
