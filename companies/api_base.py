"""API conventions chosen once for every endpoint: errors, pagination.

Errors always have the shape::

    {"error": {"status": 400, "code": "invalid", "message": "…",
               "fields": {"email": ["Enter a valid email address."]}}}

``fields`` appears only for validation errors (400). ``code`` is DRF's error code
(``not_authenticated``, ``authentication_failed``, ``permission_denied``, ``not_found``,
``method_not_allowed``, ``parse_error``, ``unsupported_media_type``, ``throttled``…), stable
for clients to branch on; ``message`` is for people and may be translated. 401 answers carry
``WWW-Authenticate``, 429 answers ``Retry-After``. Unknown routes under ``/api/v1/`` get the
same 404 body (``companies.api.NotFoundApi``), and outside ``DEBUG`` an unexpected exception
becomes a 500 body in this shape after being logged like Django logs it.

Lists are cursor-paginated (``{"next": url|null, "previous": url|null, "results": [...]}``,
``?page_size=`` up to 500) so that page N costs the same at any table size. A ``page_size``
that is not a whole number of at least 1, or a cursor the API did not give, is a 400 field
error (larger page sizes are capped at 500).

Query parameters are validated by serializers over ``query_data(request)``: an empty value
(``?until=``) is a value like any other, refused when it is not valid, where DRF's form
handling would have dropped it silently.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

request_logger = logging.getLogger("django.request")


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-created_at", "-id")
    page_size_query_description = (
        "Results per page, 1 to 500 (default 50); larger values are capped at 500."
    )

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [_("Enter a whole number of at least 1.")]}
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request: Any) -> Any:
        if request.query_params.get(self.cursor_query_param) == "":
            return None  # ?cursor= is the first page, like no cursor
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [_("Invalid cursor: use a next or previous link.")]}
            ) from exc

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


def query_data(request: Any) -> dict[str, str]:
    """The query parameters as a plain dict (the last value of each) for a serializer."""
    return dict(request.query_params.items())


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request body is too large.")
    default_code = "too_large"


def error_body(status_code: int, code: str, message: str, fields: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return {"error": body}


def report_server_error(exc: Exception, context: dict[str, Any]) -> None:
    """What Django's own handler does for an uncaught exception: log it (and mail the admins,
    if configured) and let error trackers hooked on the signal see it."""
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    request_logger.error(
        "Internal Server Error: %s",
        getattr(django_request, "path", "?"),
        exc_info=exc,
        extra={"status_code": 500, "request": django_request},
    )
    got_request_exception.send(sender=None, request=django_request)


def _server_error(exc: Exception, context: dict[str, Any]) -> Response | None:
    """A JSON 500 for clients; in DEBUG, let Django show its technical page instead."""
    if settings.DEBUG:
        return None
    report_server_error(exc, context)
    return Response(
        error_body(500, "server_error", _("Something went wrong on our side. Please retry.")),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError; a dict of fields keeps the field names.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ParseError(_("The request has too many fields."))
    response = drf_exception_handler(exc, context)
    if response is None:
        return _server_error(exc, context)
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = error_body(
            status.HTTP_400_BAD_REQUEST, "invalid", _("Some fields are invalid."), fields
        )
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(response.status_code, code, str(exc.detail))
    return response
