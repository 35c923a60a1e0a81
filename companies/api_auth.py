"""The API's tenancy choke point: the company comes from the Bearer key, nowhere else.

Authentication (``ApiKeyAuthentication``), authorisation (``HasCompanyApiKey``) and the
per-key rate limit (``ApiKeyRateThrottle``) live here because DRF imports them from settings
while ``rest_framework.views`` is still loading: this module must not import that module.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.settings import api_settings

from companies import rls
from companies.models import ApiKey, Role, role_at_least
from companies.ratelimit import window_counts
from companies.services import API_KEY_SCHEME, api_key_touch, sha256

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

# ``api_key_create`` makes 8 hex digits; anything else cannot be a key of ours, so it is
# rejected before it reaches the database.
_PREFIX_RE = re.compile(r"^[0-9a-f]{8}$")


class ApiKeyPrincipal:
    """Stands in for ``request.user`` on API calls: the key, not a person, is acting."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer nps_<prefix>_<secret>``.

    No header means "not authenticated" (the permission then answers 401); a header that is
    there but wrong in any way is a 401 straight away. Because ``authenticate_header`` is
    set, DRF answers 401 with ``WWW-Authenticate`` rather than 403 in both cases.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed(
                _("Malformed Authorization header: use 'Bearer <api key>'.")
            )
        return self._authenticate_key(parts[1])

    def _authenticate_key(self, key: str) -> tuple[ApiKeyPrincipal, ApiKey]:
        scheme, _sep, rest = key.partition("_")
        prefix, _sep, secret = rest.partition("_")
        if scheme != API_KEY_SCHEME or not _PREFIX_RE.match(prefix) or not secret:
            raise exceptions.AuthenticationFailed(_("Malformed API key."))
        # The API's choke point for row-level security: the rest of the request is the key's
        # company's (the middleware clears it when the request ends).
        with rls.lookup(reason="the key itself says which company it belongs to") as found:
            api_key = (
                ApiKey.objects.unscoped(reason="the key itself says which company it belongs to")
                .select_related("company")
                .filter(prefix=prefix)
                .first()
            )
            if api_key is None or not hmac.compare_digest(api_key.key_hash, sha256(key)):
                raise exceptions.AuthenticationFailed(_("Unknown API key."))
            if not api_key.is_active:
                raise exceptions.AuthenticationFailed(_("This API key was revoked."))
            found.found(api_key.company_id)
        api_key_touch(api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasCompanyApiKey(permissions.BasePermission):
    """A valid key is required; writes need a full-access key unless the view says otherwise.

    Views may set ``required_role`` (reads, default viewer) and ``required_write_role``
    (writes, default admin = a full-access key).
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(
                _("Send your API key: 'Authorization: Bearer <key>'.")
            )
        read_role = getattr(view, "required_role", Role.VIEWER)
        write_role = getattr(view, "required_write_role", Role.ADMIN)
        is_read = request.method in permissions.SAFE_METHODS
        if role_at_least(api_key.role, read_role if is_read else write_role):
            return True
        if not is_read and role_at_least(api_key.role, read_role):
            raise exceptions.PermissionDenied(
                _("This API key is read-only: create a full-access key to make changes.")
            )
        raise exceptions.PermissionDenied(_("This API key has no access to this endpoint."))


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """Requests per API key, at ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]``.

    A fixed window counted with an atomic ``INCR`` in the shared cache (Redis outside the
    embedded default), so the limit holds across processes and concurrent requests; DRF's
    own ``SimpleRateThrottle`` keeps a read-modify-write list that races under load. A
    client may burst up to twice the rate across a window boundary, which is acceptable for
    abuse protection. The rate is read per request, so ``override_settings`` applies.
    """

    scope = "api_key"

    def __init__(self) -> None:
        self._wait: float | None = None

    @staticmethod
    def parse_rate(rate: str | None) -> tuple[int, int] | None:
        if not rate:
            return None
        num, period = rate.split("/")
        return int(num), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]

    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        parsed = self.parse_rate(str(rate) if rate else None)
        if not isinstance(api_key, ApiKey) or parsed is None:
            return True
        limit, duration = parsed
        window = window_counts([f"throttle:{self.scope}:{api_key.prefix}"], seconds=duration)
        if window.over(limit):
            self._wait = window.remaining_seconds
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
