"""The API's OpenAPI schema as clients get it, and a check that a response keeps it."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from nps_saas.wsgi import application


@cache
def openapi() -> dict[str, Any]:
    """The schema ``/api/schema/`` serves, built without a request (no database needed)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    loaded: dict[str, Any] = json.loads(OpenApiJsonRenderer().render(generated))
    return loaded


def load_schema() -> Any:
    """The schema for Schemathesis, its requests served in-process by the WSGI app."""
    loaded = schemathesis.openapi.from_dict(openapi())
    loaded.app = application
    return loaded


@cache
def _schema() -> Any:
    return load_schema()


def assert_documented(response: Any, method: str, path: str) -> None:
    """``response`` (Django's test client's) has a status, a content type and a body that the
    schema documents for ``method path`` (the path as the schema spells it)."""
    responses = openapi()["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in responses, (
        f"{method} {path}: {response.status_code} is not documented ({sorted(responses)})"
    )
    prepared = requests.Request(
        method.upper(), f"http://testserver{response.request['PATH_INFO']}"
    ).prepare()
    converted = schemathesis.Response(
        status_code=response.status_code,
        headers={key: [value] for key, value in response.headers.items()},
        content=response.content,
        request=prepared,
        elapsed=0.0,
        verify=True,
    )
    _schema()[path][method.upper()].validate_response(converted)
