"""The OpenAPI schema tells the truth: one test per kind of Schemathesis finding of issue 13.

* response-schema mismatches: "" where the schema says uri, email or an enum; nested
  ``fields`` in 400s;
* undocumented statuses: 400 for a bad cursor (was a 404) or ``?property=``, 413, 415;
* valid requests rejected: bodies that refuse unknown keys now say
  ``additionalProperties: false``, and every JSON body refuses them alike;
* invalid requests accepted: ``page_size=null``, empty ``until=`` and other empty filters,
  dates the metrics cannot count (a 500).

``assert_documented`` checks a response's status, content type and body against the schema.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from conftest import KeyPersona
from surveys.models import Contact, Survey
from tests.openapi import assert_documented, openapi
from tests.personas import URL_KWARG_FACTORIES

pytestmark = pytest.mark.django_db

OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in openapi()["paths"].items()
    for method, operation in item.items()
]
LIST_PATHS = [
    path
    for method, path, operation in OPERATIONS
    if method == "GET" and any(p["name"] == "cursor" for p in operation.get("parameters", []))
]
JSON_BODY_OPERATIONS = [
    (method, path)
    for method, path, operation in OPERATIONS
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]


def _url(path: str, company_ids: dict[str, str]) -> str:
    for name, value in company_ids.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.fixture
def ids(api_owner: KeyPersona) -> dict[str, str]:
    """A real object of the key's company for each path parameter name."""
    return {name: make(api_owner.company) for name, make in URL_KWARG_FACTORIES.items()}


def call(api_owner: KeyPersona, method: str, url: str, body: Any = None, **kwargs: Any) -> Any:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_owner.key}")
    if body is None and method == "GET":
        return client.get(url, kwargs.get("params"))
    return client.generic(
        method,
        url,
        data=body if isinstance(body, bytes) else json.dumps(body),
        content_type=kwargs.get("content_type", "application/json"),
    )


# --- Response-schema mismatches --------------------------------------------------------------


def test_blank_reply_to_reads_null(api_owner):
    response = call(api_owner, "GET", "/api/v1/company/")
    assert_documented(response, "GET", "/api/v1/company/")
    assert response.json()["reply_to"] is None


def test_survey_without_logo_or_link_reads_null_and_null_clears_them(api_owner, ids):
    url = f"/api/v1/surveys/{ids['survey_id']}/"
    survey = Survey.objects.for_company(api_owner.company).get(public_id=ids["survey_id"])
    assert survey.logo_url == ""
    response = call(api_owner, "GET", url)
    assert_documented(response, "GET", "/api/v1/surveys/{survey_id}/")
    assert response.json()["logo_url"] is None
    assert response.json()["promoter_link_url"] is None

    changed = call(
        api_owner,
        "PATCH",
        url,
        {"logo_url": "https://cdn.example.com/logo.png", "promoter_link_url": "https://x.example"},
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["logo_url"] == "https://cdn.example.com/logo.png"
    cleared = call(api_owner, "PATCH", url, {"logo_url": None, "promoter_link_url": ""})
    assert cleared.status_code == 200, cleared.content
    assert_documented(cleared, "PATCH", "/api/v1/surveys/{survey_id}/")
    assert cleared.json()["logo_url"] is None
    assert cleared.json()["promoter_link_url"] is None
    survey.refresh_from_db()
    assert (survey.logo_url, survey.promoter_link_url) == ("", "")


def test_contact_without_language_reads_null(api_owner, ids):
    contact = Contact.objects.for_company(api_owner.company).get(public_id=ids["contact_id"])
    assert contact.language == ""
    response = call(api_owner, "GET", f"/api/v1/contacts/{contact.public_id}/")
    assert_documented(response, "GET", "/api/v1/contacts/{contact_id}/")
    assert response.json()["language"] is None
    listed = call(api_owner, "GET", "/api/v1/contacts/")
    assert_documented(listed, "GET", "/api/v1/contacts/")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Nested", "extra_questions": [{"kind": "text"}]},
        {"name": "Nested", "texts": {"en": {"question": 5, "thanks": ["x"]}}},
        {"name": "Nested", "texts": {"en": {"bogus": "x"}}},
    ],
)
def test_nested_field_errors_are_documented(api_owner, body):
    response = call(api_owner, "POST", "/api/v1/surveys/", body)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert isinstance(next(iter(fields.values())), dict)  # nested, not a list of strings
    assert_documented(response, "POST", "/api/v1/surveys/")


# --- Undocumented statuses ---------------------------------------------------------------------


def test_every_operation_documents_the_errors_it_can_answer():
    for method, path, operation in OPERATIONS:
        codes = set(operation["responses"])
        expected = {"401", "429"}
        if "{" in path:
            expected.add("404")
        if method != "GET":
            expected.add("403")
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            expected.add("400")
        assert expected <= codes, f"{method} {path}: {sorted(expected - codes)} not documented"
        for code in expected:
            content = operation["responses"][code]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("path", LIST_PATHS)
def test_bad_cursor_is_a_documented_400(api_owner, ids, path):
    response = call(api_owner, "GET", _url(path, ids), params={"cursor": "garbage"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["cursor"]
    assert_documented(response, "GET", path)


@pytest.mark.parametrize("value", ["", "plan", "=walker"])
def test_malformed_property_filter_is_a_documented_400(api_owner, value):
    response = call(api_owner, "GET", "/api/v1/contacts/", params={"property": value})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["property"]
    assert_documented(response, "GET", "/api/v1/contacts/")


def test_oversized_body_is_a_documented_413(api_owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = call(api_owner, "POST", "/api/v1/contacts/", {"name": "x" * 4096})
    assert response.status_code == 413
    assert_documented(response, "POST", "/api/v1/contacts/")


def test_unsupported_media_type_is_a_documented_415(api_owner):
    response = call(api_owner, "POST", "/api/v1/surveys/", b"name=x", content_type="text/plain")
    assert response.status_code == 415
    assert_documented(response, "POST", "/api/v1/surveys/")


# --- Valid requests rejected: unknown keys ----------------------------------------------------


def test_every_json_body_declares_that_it_refuses_unknown_keys():
    schemas = openapi()["components"]["schemas"]
    assert JSON_BODY_OPERATIONS
    for method, path in JSON_BODY_OPERATIONS:
        operation = openapi()["paths"][path][method.lower()]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = schemas[ref.rsplit("/", 1)[1]]
        assert body.get("additionalProperties") is False, f"{method} {path}"


@pytest.mark.parametrize(("method", "path"), JSON_BODY_OPERATIONS)
def test_every_json_body_refuses_unknown_keys_by_name(api_owner, ids, method, path):
    response = call(api_owner, method, _url(path, ids), {"scheduled_at": "2030-01-01"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]["scheduled_at"] == ["Unknown field."]
    assert_documented(response, method, path)


# --- Invalid requests accepted ------------------------------------------------------------------


@pytest.mark.parametrize("path", LIST_PATHS)
def test_page_size_null_is_refused_on_every_list(api_owner, ids, path):
    response = call(api_owner, "GET", _url(path, ids), params={"page_size": "null"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page_size"]
    assert_documented(response, "GET", path)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/metrics/", {"until": ""}, "until"),
        ("/api/v1/metrics/", {"since": ""}, "since"),
        ("/api/v1/metrics/", {"trend": ""}, "trend"),
        ("/api/v1/responses/", {"until": ""}, "until"),
        ("/api/v1/responses/", {"category": ""}, "category"),
        ("/api/v1/surveys/", {"status": ""}, "status"),
        ("/api/v1/invitations/", {"status": ""}, "status"),
        ("/api/v1/invitations/", {"survey": ""}, "survey"),
    ],
)
def test_empty_filters_are_refused(api_owner, path, params, field):
    response = call(api_owner, "GET", path, params=params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert_documented(response, "GET", path)


@pytest.mark.parametrize("params", [{"since": "0465-07-14"}, {"until": "9999-12-31"}])
def test_metrics_refuse_days_they_cannot_count(api_owner, ids, params):
    # since=0465-07-14 was a 500: the previous period of equal length overflowed.
    for path in ("/api/v1/metrics/", "/api/v1/surveys/{survey_id}/metrics/"):
        response = call(api_owner, "GET", _url(path, ids), params=params)
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["fields"]) == list(params)
        assert_documented(response, "GET", path)


def test_metrics_still_take_a_long_range(api_owner):
    response = call(api_owner, "GET", "/api/v1/metrics/", params={"since": "1990-01-01"})
    assert response.status_code == 200, response.content


def test_audience_all_must_be_a_boolean(api_owner, ids):
    filters = [{"property": "plan", "op": "eq", "value": "pro"}]
    response = call(
        api_owner,
        "POST",
        "/api/v1/campaigns/",
        {"survey": ids["survey_id"], "audience": {"all": 5, "filters": filters}},
    )
    assert response.status_code == 400, response.content
    assert "audience" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "request_field",
    [
        # Schemathesis: external_id 0 was stored as "0" though the schema says string.
        ("POST", "/api/v1/contacts/", {"email": "a@b.example", "external_id": 0}, "external_id"),
        ("PATCH", "/api/v1/contacts/{contact_id}/", {"name": 5}, "name"),
        ("PATCH", "/api/v1/surveys/{survey_id}/", {"sample_percent": "50"}, "sample_percent"),
        ("PATCH", "/api/v1/surveys/{survey_id}/", {"throttle_days": True}, "throttle_days"),
        ("POST", "/api/v1/surveys/", {"name": "x", "texts": {"en": {"thanks": 1}}}, "texts"),
        (
            "POST",
            "/api/v1/surveys/{survey_id}/invitations/",
            {"email": "a@b.example", "force": "true"},
            "force",
        ),
        (
            "POST",
            "/api/v1/team-invitations/",
            {"email": ["a@b.example"], "role": "viewer"},
            "email",
        ),
    ],
)
def test_values_of_another_json_type_are_refused(api_owner, ids, request_field):
    method, path, body, field = request_field
    response = call(api_owner, method, _url(path, ids), body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert_documented(response, method, path)


def test_values_of_the_declared_type_are_taken(api_owner, ids):
    url = f"/api/v1/surveys/{ids['survey_id']}/"
    response = call(api_owner, "PATCH", url, {"sample_percent": 50, "reminder_after_days": None})
    assert response.status_code == 200, response.content
    assert response.json()["sample_percent"] == 50
    created = call(
        api_owner, "POST", "/api/v1/contacts/", {"email": "n@b.example", "external_id": "0"}
    )
    assert created.status_code == 201, created.content
    assert created.json()["external_id"] == "0"
