"""The API's tenancy choke point: the company comes from the Bearer key, nowhere else."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions

from companies.models import ApiKey, Role, role_at_least
from companies.services import API_KEY_SCHEME, api_key_touch, sha256

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class ApiKeyPrincipal:
    """Stands in for ``request.user`` on API calls: the key, not a person, is acting."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
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
        if scheme != API_KEY_SCHEME or not prefix or not secret:
            raise exceptions.AuthenticationFailed(_("Malformed API key."))
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
        api_key_touch(api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasCompanyApiKey(permissions.BasePermission):
    """A valid key is required; writes need a full-access key unless the view says otherwise.

    Views may set ``required_role`` (reads) and ``required_write_role`` (writes).
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(
                _("Send your API key: 'Authorization: Bearer <key>'.")
            )
        read_role = getattr(view, "required_role", Role.VIEWER)
        write_role = getattr(view, "required_write_role", Role.ADMIN)
        needed = read_role if request.method in permissions.SAFE_METHODS else write_role
        return role_at_least(api_key.role, needed)
