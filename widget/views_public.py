"""The widget's public endpoints, called from customers' pages on other origins.

``GET /w/nps.js?v=<version>``: the script (cached for a year at its current version).
``POST /w/show/``: should this person see the question now? One request, decided here.
``POST /w/answer/``: the score, then the comment, of one showing (its ticket).
``POST /w/dismiss/``: the person closed it (declined; its own cooldown).

Bodies are JSON sent as ``text/plain`` (a CORS "simple" request: no preflight round trip; a
preflight is answered anyway). The publishable key names the survey and its company; CORS is
answered only to the widget's allowed origins, and every other origin is refused. No cookies.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe
from rest_framework.throttling import BaseThrottle

from companies.ratelimit import window_counts
from companies.text import TooDeep, unstorable_path
from widget.models import WidgetSettings
from widget.selectors import widget_for_key
from widget.services import (
    Caller,
    Refused,
    UnknownTicket,
    properties_clean,
    widget_answer,
    widget_decide,
    widget_dismiss,
)

SCRIPT_PATH = Path(__file__).parent / "static" / "widget" / "nps.js"
MAX_BODY_BYTES = 16_384
RATE_WINDOW_SECONDS = 60
CALLS_PER_KEY = 30_000  # per window (500/s), all visitors of one widget together
CALLS_PER_VISITOR = 30  # per window, per browser id and per client address
MAX_TEXT = 500


@functools.cache
def script_body() -> bytes:
    return SCRIPT_PATH.read_bytes()


def script_version() -> str:
    """The script's version in its address: changes whenever the script does."""
    return hashlib.sha256(script_body()).hexdigest()[:12]


@require_safe
def script(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(script_body(), content_type="text/javascript; charset=utf-8")
    if request.GET.get("v") == script_version():
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response["Cache-Control"] = "public, max-age=300"
    # Loaded by other sites' pages: a script, not a page of ours.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# --- Helpers ------------------------------------------------------------------------------------


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "600"
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


def _refused(status: int) -> HttpResponse:
    # No CORS header: the calling page can read nothing.
    response = HttpResponse(status=status)
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


def _text(data: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError({name: "invalid"})
    return value.strip() or None


class _Call:
    """A parsed widget call: its JSON body, its widget, the allowed origin."""

    def __init__(self, data: dict[str, Any], widget: WidgetSettings, origin: str) -> None:
        self.data, self.widget, self.origin = data, widget, origin


def _body(request: HttpRequest) -> dict[str, Any] | None:
    """The JSON object of a small body whose every string can be stored; else None."""
    if len(request.body) > MAX_BODY_BYTES:
        return None
    try:
        data = json.loads(request.body or b"{}")
        if isinstance(data, dict) and unstorable_path(data) is None:
            return data
    except (ValueError, TooDeep):
        pass
    return None


def _open(request: HttpRequest) -> _Call | HttpResponse:
    """Parse, find the widget, check the origin and the rate limits; or the refusal."""
    data = _body(request)
    if data is None:
        return _refused(400)
    widget = widget_for_key(key=str(data.get("key") or ""))
    if widget is None:
        return _refused(404)
    origin = str(request.headers.get("Origin", "")).lower()
    if not origin or origin not in widget.allowed_origins:
        return _refused(403)
    # Per browser: its id on "should I show?", its ticket on the answer and the dismissal.
    visitor = str(data.get("visitor") or data.get("ticket") or "")[:64]
    client = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
    # All three limits in one round trip to the shared cache.
    window = window_counts(
        [
            f"widget-rate:k:{widget.pk}",
            f"widget-rate:v:{widget.pk}:{visitor}",
            f"widget-rate:a:{widget.pk}:{client}",
        ],
        seconds=RATE_WINDOW_SECONDS,
    )
    if window.over(CALLS_PER_KEY, CALLS_PER_VISITOR, CALLS_PER_VISITOR * 4):
        return _cors(JsonResponse({"error": "rate"}, status=429), origin)
    return _Call(data, widget, origin)


def _preflight(request: HttpRequest) -> HttpResponse:
    """A preflight names no key: answer it for an origin some enabled widget allows."""
    origin = str(request.headers.get("Origin", "")).lower()
    widgets = WidgetSettings.objects.unscoped(reason="a preflight carries only its origin").filter(
        enabled=True
    )
    if not origin:
        allowed = False
    elif connection.vendor == "postgresql":
        allowed = widgets.filter(allowed_origins__contains=[origin]).exists()
    else:  # the embedded SQLite default has no JSON containment
        allowed = any(origin in o for o in widgets.values_list("allowed_origins", flat=True))
    return _cors(HttpResponse(status=204), origin) if allowed else _refused(403)


def _created_at(value: object) -> datetime | None:
    """``created_at`` as ISO 8601 or Unix seconds (Delighted's ``createdAt`` too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            return None
        if parsed is None:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _caller(data: dict[str, Any]) -> Caller:
    person = data.get("person") or {}
    if not isinstance(person, dict):
        raise ValidationError({"person": "invalid"})
    visitor = _text(data, "visitor", 64)
    if not visitor:
        raise ValidationError({"visitor": "required"})
    return Caller(
        visitor=visitor,
        page_url=_text(data, "url", 2000) or "",
        page_language=_text(data, "lang", 20) or "",
        email=(_text(person, "email", 254) or "").lower() or None,
        external_id=_text(person, "external_id", 128),
        name=_text(person, "name", 200),
        created_at=_created_at(person.get("created_at")),
        locale=_text(person, "locale", 20),
        signature=_text(person, "signature", 128) or "",
        properties=properties_clean(person.get("properties")),
    )


# --- Endpoints ----------------------------------------------------------------------------------


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def show(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight(request)
    call = _open(request)
    if isinstance(call, HttpResponse):
        return call
    try:
        decision = widget_decide(widget=call.widget, caller=_caller(call.data))
    except ValidationError:
        return _cors(JsonResponse({"show": False, "error": "invalid"}, status=400), call.origin)
    except Refused as refusal:
        return _cors(
            JsonResponse({"show": False, "error": refusal.reason}, status=403), call.origin
        )
    if not decision.show:
        return _cors(JsonResponse({"show": False, "reason": decision.reason}), call.origin)
    return _cors(
        JsonResponse(
            {
                "show": True,
                "ticket": decision.ticket,
                "language": decision.language,
                "delay": decision.delay_seconds,
                "texts": decision.texts,
                "accent": decision.accent,
                "dismiss_days": decision.dismiss_days,
                "answer_days": decision.answer_days,
            }
        ),
        call.origin,
    )


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def answer(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight(request)
    call = _open(request)
    if isinstance(call, HttpResponse):
        return call
    try:
        comment = _text(call.data, "comment", 5000)
        widget_answer(
            widget=call.widget,
            ticket=str(call.data.get("ticket") or ""),
            score=call.data.get("score"),
            comment=comment,
        )
    except UnknownTicket:
        return _cors(JsonResponse({"error": "ticket"}, status=404), call.origin)
    except ValidationError:
        return _cors(JsonResponse({"error": "invalid"}, status=400), call.origin)
    return _cors(JsonResponse({"ok": True}), call.origin)


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def dismiss(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _preflight(request)
    call = _open(request)
    if isinstance(call, HttpResponse):
        return call
    try:
        widget_dismiss(widget=call.widget, ticket=str(call.data.get("ticket") or ""))
    except UnknownTicket:
        return _cors(JsonResponse({"error": "ticket"}, status=404), call.origin)
    return _cors(JsonResponse({"ok": True}), call.origin)
