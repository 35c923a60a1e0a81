"""API conventions chosen once for every endpoint: errors, pagination, the company base view.

Errors always have the shape::

    {"error": {"status": 400, "code": "invalid", "message": "…",
               "fields": {"email": ["Enter a valid email address."]}}}

``fields`` appears only for validation errors. Lists are cursor-paginated
(``{"results": [...], "next": url|null, "previous": url|null}``) so that page N costs the
same at any table size.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-created_at", "-id")


def _error_body(status_code: int, code: str, message: str, fields: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return {"error": body}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = _error_body(
            status.HTTP_400_BAD_REQUEST, "invalid", _("Some fields are invalid."), fields
        )
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = _error_body(response.status_code, code, str(exc.detail))
    return response
