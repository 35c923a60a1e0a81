"""Helpers for the widget's tests: an enabled widget, and calls from a host page."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from companies.models import Company
from surveys.models import Survey
from widget.models import WidgetSettings
from widget.services import widget_settings_update

ORIGIN = "https://shop.test"
PAGE = "https://shop.test/app/settings?tab=billing"


def enable(company: Company, survey: Survey, **fields: Any) -> WidgetSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "allowed_origins": [ORIGIN],
        "delay_seconds": 0,
    }
    values.update(fields)
    return widget_settings_update(company=company, survey=survey, **values)


def call(
    path: str, body: dict[str, Any], *, origin: str | None = ORIGIN, raw: bytes | None = None
) -> Any:
    extra: dict[str, Any] = {"HTTP_ORIGIN": origin} if origin else {}
    return Client(raise_request_exception=False).post(
        f"/w/{path}/",
        data=raw if raw is not None else json.dumps(body),
        content_type="text/plain",
        **extra,
    )


def show(widget: WidgetSettings, visitor: str = "v" * 32, **person: Any) -> Any:
    body: dict[str, Any] = {"key": widget.publishable_key, "visitor": visitor, "url": PAGE}
    if person:
        body["person"] = person
    return call("show", body)


def answer(widget: WidgetSettings, ticket: str, score: int, comment: str | None = None) -> Any:
    body: dict[str, Any] = {"key": widget.publishable_key, "ticket": ticket, "score": score}
    if comment is not None:
        body["comment"] = comment
    return call("answer", body)


def dismiss(widget: WidgetSettings, ticket: str) -> Any:
    return call("dismiss", {"key": widget.publishable_key, "ticket": ticket})
