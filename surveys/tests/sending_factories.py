"""Helpers of the sending tests (test_sending_*.py): surveys, contacts, fake provider."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import requests
from django.test import override_settings

from companies.models import Company
from surveys.models import Contact, Survey, SurveyKind, SurveyStatus
from surveys.services.surveys import survey_create, survey_set_status


def active_survey(
    company: Company, *, kind: str = SurveyKind.NPS, name: str = "", **fields: Any
) -> Survey:
    survey = survey_create(company=company, name=name or f"{kind} survey", kind=kind, **fields)
    return survey_set_status(company=company, survey=survey, status=SurveyStatus.ACTIVE)


def contacts(
    company: Company, count: int, *, prefix: str = "person", **fields: Any
) -> list[Contact]:
    return Contact.objects.bulk_create(
        Contact(company=company, email=f"{prefix}{n}@example.com", name=f"P {n}", **fields)
        for n in range(count)
    )


class FakePostmark:
    """Postmark's API at the HTTP edge: answers each send with ``reply(payload)``.

    ``reply`` returns (status, body); records every payload sent (thread-safe). The messages
    of a 200 answer are kept as accepted, and the outbound message search
    (``GET /messages/outbound?metadata_<key>=<value>``) finds them. ``lose_answers``: the
    messages are accepted, then the answer never comes (a read timeout).
    """

    def __init__(self, reply: Callable[[Any], tuple[int, Any]] | None = None) -> None:
        self.reply = reply or self.accept
        self.calls: list[tuple[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.searches: list[dict[str, str]] = []
        self.lose_answers = False
        self._lock = threading.Lock()

    @staticmethod
    def accept(payload: Any) -> tuple[int, Any]:
        messages = payload if isinstance(payload, list) else [payload]
        results = [
            {
                "To": m["To"],
                "SubmittedAt": "2026-01-01T00:00:00Z",
                "MessageID": f"msg-{abs(hash(m['To']))}",
                "ErrorCode": 0,
                "Message": "OK",
            }
            for m in messages
        ]
        return 200, results if isinstance(payload, list) else results[0]

    def send(self, adapter: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        assert request.url is not None
        assert request.url.startswith("https://api.postmarkapp.com/"), request.url
        if request.method == "GET":
            return self._search(request)
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        payload = json.loads(body or "null")
        with self._lock:
            self.calls.append((request.url, payload))
        status, reply = self.reply(payload)
        if status == 200:
            messages = payload.get("Messages", [payload]) if isinstance(payload, dict) else payload
            with self._lock:
                self.accepted += messages
            if self.lose_answers:
                raise requests.ReadTimeout("Read timed out. (read timeout=30)", request=request)
        return self._response(request, status, reply)

    def _search(self, request: requests.PreparedRequest) -> Any:
        assert request.url is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        assert urlsplit(request.url).path == "/messages/outbound", request.url
        with self._lock:
            self.searches.append(query)
            filters = {
                k[len("metadata_") :]: v for k, v in query.items() if k.startswith("metadata_")
            }
            found = [
                {
                    "MessageID": f"msg-{abs(hash(m['To']))}",
                    "Recipients": [m["To"]],
                    "Metadata": m.get("Metadata", {}),
                }
                for m in self.accepted
                if all((m.get("Metadata") or {}).get(k) == v for k, v in filters.items())
            ]
        return self._response(request, 200, {"TotalCount": len(found), "Messages": found})

    @staticmethod
    def _response(request: requests.PreparedRequest, status: int, reply: Any) -> Any:
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(reply).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url  # type: ignore[assignment]
        response.request = request
        return response

    @property
    def recipients(self) -> list[str]:
        found = []
        for _url, payload in self.calls:
            for message in payload if isinstance(payload, list) else [payload]:
                found.append(message["To"])
        return found


@contextmanager
def postmark(reply: Callable[[Any], tuple[int, Any]] | None = None) -> Iterator[FakePostmark]:
    """The real anymail Postmark backend with only requests' transport replaced."""
    fake = FakePostmark(reply)
    with (
        override_settings(
            EMAIL_PROVIDER="postmark",
            EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
            ANYMAIL={"POSTMARK_SERVER_TOKEN": "test-token"},
        ),
        mock.patch("requests.adapters.HTTPAdapter.send", autospec=True, side_effect=fake.send),
    ):
        yield fake
