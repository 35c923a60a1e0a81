"""OpenAPI pieces: the API key security scheme (loaded by CompaniesConfig.ready), the error
responses every endpoint documents, and the schema class that keeps them complete.

``AutoSchema`` adds to every operation the errors it can answer whatever its view says: 401
and 429 (every call has a key and a rate), 400 when it takes query parameters or a body, 403
for writes (read-only keys), 404 when its path names an object, 413 and 415 when it takes a
body. Request bodies that refuse unknown keys (``StrictInput``) say so with
``additionalProperties: false``. The nested ``fields`` of a 400 are the ``FieldErrors``
component (recursive: nested objects and lists of objects report per key or index).
(``_get_response_bodies`` and ``_map_basic_serializer`` are drf-spectacular's own hooks, not
public API: tests/test_api_schema_truth.py fails if an upgrade changes them.)

The schema (``/api/schema/``) and its Swagger UI (``/api/docs/``) are public on purpose: they
describe the API's shape only and hold no tenant data (``SERVE_AUTHENTICATION = []``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse

from companies.serializers import ErrorSerializer, StrictInput

_ERROR_DESCRIPTIONS = {
    400: "Invalid input: `error.fields` holds the messages per field.",
    401: "No API key, a malformed one, or an unknown or revoked key.",
    403: "The key may not do this (e.g. a read-only key writing).",
    404: "Not found.",
    413: "The request body is too large.",
    415: "The request body's media type is not one this operation takes.",
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


_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema with the errors every operation can answer (see the module)."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        if not self.view.get_authenticators():
            return bodies
        codes = {401, 429}
        if self._takes_query_parameters() or self._takes_body():
            codes.add(400)
        if self.method in _WRITE_METHODS:
            codes.add(403)
        if "{" in self.path:
            codes.add(404)
        if self._takes_body():
            codes |= {413, 415}
        for code, response in error_responses(*sorted(codes)).items():
            if str(code) not in bodies:
                bodies[str(code)] = self._get_response_for_code(
                    response, str(code), direction=direction
                )
        return dict(sorted(bodies.items()))

    def _takes_body(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH"} and self.get_request_serializer() is not None

    def _takes_query_parameters(self) -> bool:
        if any(
            not isinstance(p, dict) and getattr(p, "location", "query") == "query"
            for p in self.get_override_parameters()
        ):
            return True
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        strict = isinstance(serializer, StrictInput) or (
            isinstance(serializer, type) and issubclass(serializer, StrictInput)
        )
        if direction == "request" and strict:
            schema["additionalProperties"] = False
        return schema


FIELD_ERRORS_COMPONENT = "FieldErrors"
_FIELD_ERRORS_REF = {"$ref": f"#/components/schemas/{FIELD_ERRORS_COMPONENT}"}
_FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": (
        "Messages per field. A nested object reports its fields the same way, a list of "
        "objects per index (an object keyed by index, or a list with an empty object for "
        "each valid item)."
    ),
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"oneOf": [{"type": "string"}, _FIELD_ERRORS_REF]}},
            _FIELD_ERRORS_REF,
        ]
    },
}


def add_field_errors_component(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the recursive ``FieldErrors`` schema that ``ErrorDetail`` names."""
    result.setdefault("components", {}).setdefault("schemas", {})[FIELD_ERRORS_COMPONENT] = (
        _FIELD_ERRORS_SCHEMA
    )
    return result
