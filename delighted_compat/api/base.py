"""Delighted's API conventions, once for every ``/v1/`` endpoint (people, responses, Autopilot…).

What every endpoint shares (spec ``delighted-api.md`` §1–2, §10):

* **Auth**: HTTP Basic with one of our API keys as the user name; ``base64(KEY)`` (the Python
  client) and ``base64(KEY:)`` (every other client, curl). Anything wrong is a 401 with
  ``WWW-Authenticate: Basic realm="Delighted"``. No CSRF (no session authentication here).
  Read-only keys may only read (403 otherwise).
* **Input**: query parameters merged with the body (JSON, or form-urlencoded with Rails-style
  brackets: ``properties[a]=b``, ``expand[]=person``); a GET's body is ignored. Helpers turn
  parameters into ints, bools, timestamps and lists the way the clients send them.
* **Output**: JSON (``application/json; charset=utf-8``), ids as strings, integer Unix
  seconds, explicit nulls; statuses 200/201/202 only.
* **Errors**: ``{"status": n, "message": "…", "errors": {field: [msgs]}}`` (errors only on
  422); 429 always with an integer ``Retry-After`` of at least 1.
* **Pages**: numbered (``page``, ``per_page``) or cursor (``page_info`` inside an absolute
  ``Link: <…>; rel="next"`` that keeps every filter).

A module adds an endpoint by subclassing ``DelightedAPIView`` and reading ``self.params``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, QueryDict
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, parsers, permissions, renderers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from companies.api_auth import ApiKeyAuthentication, ApiKeyPrincipal, ApiKeyRateThrottle
from companies.api_base import report_server_error
from companies.api_parsers import JSONParser
from companies.api_views import Metadata
from companies.models import ApiKey, Company, Role
from companies.text import TOO_DEEP_MESSAGE, UNSTORABLE_MESSAGE, TooDeep, unstorable_path

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100

_T = TypeVar("_T")


# --- Authentication, permission, rate limit ----------------------------------------------------


class DelightedBasicAuthentication(ApiKeyAuthentication):
    """``Authorization: Basic base64(KEY)`` or ``base64(KEY:)``; the key is the user name.

    DRF's own ``BasicAuthentication`` refuses a header without a colon, which is exactly
    what Delighted's Python client sends.
    """

    keyword = "Basic"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != b"basic":
            raise exceptions.AuthenticationFailed(
                _("Send your API key with HTTP Basic authentication, as the user name.")
            )
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise exceptions.AuthenticationFailed(_("Malformed API key.")) from exc
        key = decoded.partition(":")[0]
        return self._authenticate_key(key)

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="Delighted"'


class DelightedKeyPermission(permissions.BasePermission):
    """A valid key is required (401 otherwise); a read-only key may only read."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(
                _("Send your API key with HTTP Basic authentication, as the user name.")
            )
        if request.method in permissions.SAFE_METHODS or api_key.role != Role.VIEWER:
            return True
        raise exceptions.PermissionDenied(
            _("This API key is read-only: create a full-access key to make changes.")
        )


class DelightedRateThrottle(ApiKeyRateThrottle):
    """The API's per-key limit (``API_RATE``), shared with ``/api/v1/``; never waits < 1 s."""

    def wait(self) -> float | None:
        wait = super().wait()
        return float(max(1, math.ceil(wait if wait is not None else 1)))


# --- Parsing ---------------------------------------------------------------------------------


def unflatten(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Rails-style brackets to nested values: ``a[b][c]=1`` → ``{"a": {"b": {"c": "1"}}}``,
    ``a[]=x&a[]=y`` → ``{"a": ["x", "y"]}``; a plain key keeps its last value."""
    result: dict[str, Any] = {}
    for raw_key, value in pairs:
        head, bracket, rest = raw_key.partition("[")
        if not bracket or not head:
            result[raw_key] = value
            continue
        keys = [head] + [part.rstrip("]") for part in ("[" + rest).split("[")[1:]]
        node: Any = result
        for index, key in enumerate(keys):
            last = index == len(keys) - 1
            if key == "":
                if not isinstance(node, list):
                    break  # "a[b][]" under a dict that is not a list: ignore
                node.append(value)
                break
            if not isinstance(node, dict):
                break
            if last:
                node[key] = value
                break
            following = keys[index + 1]
            wanted: type = list if following == "" else dict
            if not isinstance(node.get(key), wanted):
                node[key] = wanted()
            node = node[key]
    return result


class BracketFormParser(parsers.BaseParser):
    """``application/x-www-form-urlencoded`` (Delighted's PHP client) with brackets unflattened."""

    media_type = "application/x-www-form-urlencoded"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        data = QueryDict(stream.read(), encoding=encoding)
        parsed = unflatten([(key, value) for key, values in data.lists() for value in values])
        try:
            path = unstorable_path(parsed)
        except TooDeep as exc:
            raise exceptions.ParseError(TOO_DEEP_MESSAGE) from exc
        if path is not None:
            raise exceptions.ValidationError({str(path[0]): [UNSTORABLE_MESSAGE]})
        return parsed


class JSONRenderer(renderers.JSONRenderer):
    """JSON with its charset named: clients decode Russian and Kazakh text as UTF-8."""

    charset = "utf-8"


# --- Errors ----------------------------------------------------------------------------------

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}

# Our services name some fields differently from Delighted's parameters.
FIELD_NAMES = {"phone": "phone_number", "non_field_errors": "base", "__all__": "base"}


class Unprocessable(exceptions.APIException):
    """A 422 with Delighted's per-field ``errors``."""

    status_code = 422
    default_detail = "Unprocessable Entity"
    default_code = "invalid"

    def __init__(self, errors: Mapping[str, Any]) -> None:
        super().__init__()
        self.errors = {
            FIELD_NAMES.get(field, field): [str(m) for m in _as_list(messages)]
            for field, messages in errors.items()
        }


def _as_list(messages: Any) -> list[Any]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _as_list(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _as_list(value)]
    return [messages]


def error_response(status_code: int, errors: Mapping[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"status": status_code, "message": REASONS.get(status_code, "Error")}
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Delighted's error body for every failure of a ``/v1/`` view."""
    if isinstance(exc, DjangoValidationError):
        exc = Unprocessable(
            exc.message_dict if hasattr(exc, "error_dict") else {"base": exc.messages}
        )
    elif isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        exc = Unprocessable(detail if isinstance(detail, dict) else {"base": detail})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return error_response(413)
    elif isinstance(exc, TooManyFieldsSent):
        exc = Unprocessable({"base": [_("The request has too many fields.")]})
    if not isinstance(exc, exceptions.APIException):
        return _server_error(exc, context)
    response = _api_error(exc)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = 401
        response["WWW-Authenticate"] = 'Basic realm="Delighted"'
        response.data["status"] = 401
        response.data["message"] = REASONS[401]
    if isinstance(exc, exceptions.Throttled):
        wait = getattr(exc, "wait", None) or 1
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def _api_error(exc: exceptions.APIException) -> Response:
    if isinstance(exc, exceptions.ParseError):
        return error_response(422, {"base": [str(exc.detail)]})
    if isinstance(exc, Unprocessable):
        return error_response(422, exc.errors)
    return error_response(exc.status_code)


def _server_error(exc: Exception, context: dict[str, Any]) -> Response | None:
    """A JSON 500 for clients, logged like Django logs one; in DEBUG, Django's own page."""
    if settings.DEBUG:
        return None
    report_server_error(exc, context)
    return error_response(500)


# --- Parameters ------------------------------------------------------------------------------


class Params:
    """The request's parameters: the query string merged with the body (not on GET)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def __contains__(self, name: str) -> bool:
        return self.data.get(name) is not None

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool | dict | list):
            raise Unprocessable({name: [_("must be a string")]})
        return str(value)

    def integer(self, name: str, *, default: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise Unprocessable({name: [_("must be an integer")]})
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise Unprocessable({name: [_("must be an integer")]})

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
            return value.strip().lower() in ("true", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise Unprocessable({name: [_("must be true or false")]})

    def timestamp(self, name: str) -> datetime | None:
        seconds = self.integer(name)
        if seconds is None:
            return None
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise Unprocessable({name: [_("must be a Unix time in seconds")]}) from exc

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise Unprocessable({name: [_("must be a map of keys to values")]})
        return value

    def strings(self, name: str) -> list[str]:
        """``name[]`` or bare ``name``: one value or several."""
        value = self.data.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        return [str(v) for v in values if isinstance(v, str | int) and not isinstance(v, bool)]

    def page(self) -> tuple[int, int]:
        """``(page, per_page)``: page from 1, per_page 1–100 (default 20)."""
        page = self.integer("page", default=1) or 1
        per_page = self.per_page()
        if page < 1:
            raise Unprocessable({"page": [_("must be 1 or more")]})
        return page, per_page

    def per_page(self) -> int:
        per_page = self.integer("per_page", default=DEFAULT_PER_PAGE) or DEFAULT_PER_PAGE
        if per_page < 1:
            raise Unprocessable({"per_page": [_("must be 1 or more")]})
        return min(per_page, MAX_PER_PAGE)


def request_params(request: Request) -> Params:
    query = unflatten(
        [(key, value) for key, values in request.query_params.lists() for value in values]
    )
    if request.method in ("GET", "HEAD"):
        return Params(query)
    body = request.data
    if isinstance(body, QueryDict):
        body = unflatten([(k, v) for k, values in body.lists() for v in values])
    if body is not None and not isinstance(body, dict):
        raise Unprocessable({"base": [_("The body must be a JSON object.")]})
    return Params({**query, **(body or {})})


# --- Output ----------------------------------------------------------------------------------


def unix(moment: datetime | None) -> int | None:
    """Integer Unix seconds, or None."""
    return None if moment is None else int(moment.timestamp())


# --- Pagination ------------------------------------------------------------------------------

CURSOR_SALT = "delighted_compat.cursor"


def cursor_dumps(scope: str, values: Sequence[Any]) -> str:
    """An opaque, tamper-proof ``page_info`` for ``scope`` (a list's name)."""
    return signing.dumps([scope, *values], salt=CURSOR_SALT, compress=True)


def cursor_loads(scope: str, page_info: str) -> list[Any]:
    try:
        value = signing.loads(page_info, salt=CURSOR_SALT)
    except signing.BadSignature as exc:
        raise Unprocessable({"page_info": [_("is invalid")]}) from exc
    if not isinstance(value, list) or not value or value[0] != scope:
        raise Unprocessable({"page_info": [_("is invalid")]})
    return value[1:]


def next_link(request: Request, page_info: str) -> str:
    """The absolute ``Link`` header value of the next page: the ``.json`` path, every
    original parameter (brackets kept) and the new ``page_info``."""
    path = request.path
    if not path.endswith(".json"):
        path += ".json"
    pairs = [
        (key, value)
        for key, values in request.query_params.lists()
        if key != "page_info"
        for value in values
    ]
    pairs.append(("page_info", page_info))
    url = request.build_absolute_uri(path) + "?" + urlencode(pairs)
    return f'<{url}>; rel="next"'


def cursor_page(
    request: Request,
    *,
    scope: str,
    items: list[_T],
    per_page: int,
    key: Callable[[_T], Sequence[Any]],
    render: Callable[[list[_T]], list[dict[str, Any]]],
) -> Response:
    """A cursor page: ``items`` holds up to ``per_page + 1`` rows; the extra one says more
    remain, and the last shown row's ``key`` becomes the next ``page_info``."""
    shown = items[:per_page]
    response = Response(render(shown))
    if len(items) > per_page and shown:
        response["Link"] = next_link(request, cursor_dumps(scope, key(shown[-1])))
    return response


# --- The base view ---------------------------------------------------------------------------


class DelightedAPIView(APIView):
    """Base of every ``/v1/`` endpoint: Delighted's auth, formats, errors and rate limit.

    ``self.company`` is the key's company; ``self.params`` the merged parameters.
    """

    authentication_classes = (DelightedBasicAuthentication,)
    permission_classes = (DelightedKeyPermission,)
    throttle_classes = (DelightedRateThrottle,)
    parser_classes = (JSONParser, BracketFormParser)
    renderer_classes = (JSONRenderer,)
    metadata_class = Metadata  # type: ignore[assignment]
    # Leave Delighted's API out of the OpenAPI schema of /api/v1/.
    schema = None

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return exception_handler

    @property
    def api_key(self) -> ApiKey:
        api_key = self.request.auth
        assert isinstance(api_key, ApiKey), "DelightedKeyPermission admits only API keys"
        return api_key

    @property
    def company(self) -> Company:
        return self.api_key.company

    @property
    def params(self) -> Params:
        cached: Params | None = getattr(self, "_params", None)
        if cached is None:
            cached = request_params(self.request)
            self._params = cached
        return cached


class NotFoundApi(APIView):
    """Anything else under ``/v1/``: Delighted's JSON 404 (and never a redirect). Needs no
    key: an unknown route is unknown to everyone, so it says nothing about tenants."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    renderer_classes = (JSONRenderer,)
    schema = None

    def _not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return error_response(status.HTTP_404_NOT_FOUND)

    get = post = put = patch = delete = _not_found
