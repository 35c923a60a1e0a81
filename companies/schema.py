"""OpenAPI pieces: the API key security scheme (loaded by CompaniesConfig.ready) and the
error responses every endpoint documents.

The schema (``/api/schema/``) and its Swagger UI (``/api/docs/``) are public on purpose: they
describe the API's shape only and hold no tenant data (``SERVE_AUTHENTICATION = []``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from companies.serializers import ErrorSerializer

_ERROR_DESCRIPTIONS = {
    400: "Invalid input: `error.fields` holds the messages per field.",
    401: "No API key, a malformed one, or an unknown or revoked key.",
    403: "The key may not do this (e.g. a read-only key writing).",
    404: "Not found.",
    429: "Too many requests for this key: retry after `Retry-After` seconds.",
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "companies.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "nps_<prefix>_<secret>",
            "description": (
                "An API key of your company, created in the app under API keys: "
                "`Authorization: Bearer nps_<prefix>_<secret>`. Every call acts on the "
                "key's company. Read-only keys can only read."
            ),
        }


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error responses of an endpoint, for ``extend_schema(responses=...)``."""
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_ERROR_DESCRIPTIONS[code])
        for code in codes
    }
