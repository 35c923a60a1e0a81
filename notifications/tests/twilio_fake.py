"""Twilio at the HTTP edge: a ``twilio.http.HttpClient`` the real ``twilio.rest.Client`` uses.

Everything above the transport (parameter names, URL, JSON parsing, ``TwilioRestException``)
is the twilio library's own. ``FakeTwilio.reply(form)`` decides each answer: by default the
message is accepted with a fresh SID; ``fail_for`` maps a recipient to (HTTP status, Twilio
error code). Use ``twilio_fake()`` as a context manager: it points ``notifications.sms`` at
the fake and sets platform credentials.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from logging import getLogger
from typing import Any
from unittest import mock
from urllib.parse import parse_qs

from django.test import override_settings
from twilio.http import HttpClient
from twilio.http.response import Response

from companies.models import Company

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-twilio-auth-token"
SERVICE_SID = "MG" + "a" * 32


class FakeTwilio(HttpClient):
    def __init__(self, reply: Callable[[dict[str, Any]], tuple[int, Any]] | None = None) -> None:
        super().__init__(getLogger("fake-twilio"), is_async=False)
        self.reply = reply or self.accept
        self.fail_for: dict[str, tuple[int, int]] = {}
        # The credentials every request must carry (a company's own account: set this).
        self.account = (ACCOUNT_SID, AUTH_TOKEN)
        self.requests: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self._lock = threading.Lock()

    def accept(self, form: dict[str, Any]) -> tuple[int, Any]:
        failure = self.fail_for.get(str(form.get("To", "")))
        if failure is not None:
            status, code = failure
            return status, {"code": code, "message": f"error {code}", "status": status}
        return 201, {
            "sid": "SM" + uuid.uuid4().hex,
            "status": "queued",
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
        }

    def request(  # noqa: PLR0917 (twilio's HttpClient interface)
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        account_sid, _token = self.account
        assert method == "POST"
        assert url == f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Messages.json"
        assert auth == self.account
        form = dict(data or {})
        with self._lock:
            self.requests.append(form)
            self.urls.append(url)
        status, payload = self.reply(form)
        return Response(status, json.dumps(payload))

    @property
    def recipients(self) -> list[str]:
        return [str(form["To"]) for form in self.requests]


@contextmanager
def twilio_fake(
    reply: Callable[[dict[str, Any]], tuple[int, Any]] | None = None,
) -> Iterator[FakeTwilio]:
    fake = FakeTwilio(reply)
    with (
        override_settings(
            SMS_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            SITE_URL="https://nps.example.com",
        ),
        mock.patch("notifications.sms.twilio_http_client", return_value=fake),
    ):
        yield fake


def sms_ready(company: Company, *, sender: str = "+14155550100", rate: float = 1000.0) -> Company:
    """Give ``company`` an SMS sender (fast, so that tests do not wait on the rate limit)."""
    company.sms_sender = sender
    company.sms_sender_kind = "messaging_service" if sender.startswith("MG") else "long_code"
    company.sms_rate_per_second = rate
    company.save(update_fields=["sms_sender", "sms_sender_kind", "sms_rate_per_second"])
    return company


class LoopbackTwilio:
    """Twilio's Messages API on 127.0.0.1 for senders in other processes (real workers):
    point them at it with ``TWILIO_API_URL=fake.url``. Records when each message arrived
    (``time.monotonic()`` of this process) and to whom. A context manager."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LoopbackTwilio:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def recipients(self) -> list[str]:
        with self._lock:
            return [to for _at, to in self.received]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                with fake._lock:
                    fake.received.append((time.monotonic(), form.get("To", "")))
                body = json.dumps(
                    {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": form.get("To")}
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
