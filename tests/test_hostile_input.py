"""Hostile text and bodies get the API's JSON 400 (or a web 400), never a 500, and store nothing.

NUL characters and unpaired surrogates cannot be stored in PostgreSQL text (psycopg2 refuses to
encode a lone surrogate; PostgreSQL refuses NUL): one sanitation point refuses them in request
bodies, query parameters and path parameters alike, before any view runs a query.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from conftest import KeyPersona, Persona
from surveys.models import Contact

pytestmark = pytest.mark.django_db

CONTACTS = "/api/v1/contacts/"


def _headers(persona: KeyPersona) -> dict[str, Any]:
    return dict(persona.headers)


def _client() -> Client:
    return Client(raise_request_exception=False)


def _assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    error = response.json()["error"]
    assert error["status"] == status
    assert error["message"]
    return error


def _post_raw(persona: KeyPersona, body: str | bytes) -> Any:
    return _client().post(CONTACTS, body, content_type="application/json", **_headers(persona))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"email": "a@x.test", "name": "Ann\\u0000"}', "name"),
        ('{"email": "a@x.test", "name": "\\udfff"}', "name"),
        ('{"email": "a@x.test", "properties": {"plan": "\\ud800x"}}', "properties"),
        ('{"email": "a@x.test", "properties": {"\\u0000": "x"}}', "properties"),
        ('{"email": "a@x.test\\u0000"}', "email"),
    ],
)
def test_nul_and_lone_surrogates_in_a_body_are_field_errors(
    api_owner: KeyPersona, company, body: str, field: str
):
    error = _assert_json_error(_post_raw(api_owner, body), 400)
    assert field in error["fields"], error
    assert not Contact.objects.for_company(company).exists()
    # The company's contact list still reads.
    assert _client().get(CONTACTS, **_headers(api_owner)).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        CONTACTS + "?search=%00",
        CONTACTS + "?cursor=%00",
        CONTACTS + "%00/",
        "/api/v1/surveys/%00/",
        "/api/v1/responses/?survey=%00",
    ],
)
def test_nul_in_query_and_path_parameters_is_a_400(api_owner: KeyPersona, url: str):
    _assert_json_error(_client().get(url, **_headers(api_owner)), 400)


def test_deeply_nested_json_is_a_400(api_owner: KeyPersona, company):
    depth = 100_000
    body = '{"email": "a@x.test", "properties": {"x": ' + "[" * depth + "]" * depth + "}}"
    _assert_json_error(_post_raw(api_owner, body), 400)
    assert not Contact.objects.for_company(company).exists()


def test_malformed_json_is_a_400(api_owner: KeyPersona):
    _assert_json_error(_post_raw(api_owner, '{"email": '), 400)


def test_an_oversized_body_is_the_api_error_shape(api_owner: KeyPersona, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"email": "a@x.test", "name": "x" * 4096})
    _assert_json_error(_post_raw(api_owner, body), 413)


@pytest.mark.parametrize("query", ["?search=%00", "?q=a&q=%00", "?survey=%00&status=%00"])
def test_nul_in_a_web_query_parameter_is_a_400_page(owner: Persona, company, query: str):
    owner.client.raise_request_exception = False
    for page in ("contacts/", "responses/", "inbox/", ""):
        response = owner.client.get(f"/c/{company.slug}/{page}{query}")
        assert response.status_code == 400, (page, response.status_code)


def test_nul_in_a_web_form_is_a_form_error(owner: Persona, company):
    response = owner.client.post(
        f"/c/{company.slug}/contacts/new/", {"email": "a@x.test", "name": "Ann\x00"}
    )
    assert response.status_code in (200, 400)
    assert not Contact.objects.for_company(company).exists()
