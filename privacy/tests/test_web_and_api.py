"""The web page (admins) and the REST API (full-access keys) for a person's data."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from companies.models import Role
from privacy.models import PersonalDataRequest, RequestKind, RequestVia
from privacy.tests.helpers import COMMENT, EMAIL, EXTERNAL_ID, leftovers, person_everywhere
from surveys.models import Contact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _url(company) -> str:
    return reverse("privacy:personal-data", kwargs={"company_slug": company.slug})


# --- Web ---------------------------------------------------------------------------------------


def test_admin_downloads_the_export_as_json(company, personas):
    person_everywhere(company)
    admin = personas[Role.ADMIN]
    page = admin.client.get(_url(company))
    assert page.status_code == 200
    response = admin.client.post(
        _url(company), {"kind": "email", "value": EMAIL.upper(), "export": "1"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="personal-data-')
    data = json.loads(response.content)
    assert [r["comment"] for r in data["responses"]] == [COMMENT]
    record = PersonalDataRequest.objects.for_company(company).get()
    assert (record.kind, record.via, record.actor_user) == (
        RequestKind.EXPORT,
        RequestVia.WEB,
        admin.user,
    )


def test_erasure_needs_the_confirmation(company, owner):
    person_everywhere(company)
    page = owner.client.post(_url(company), {"kind": "email", "value": EMAIL, "erase": "1"})
    assert page.status_code == 200
    assert "Tick the box to confirm the erasure." in page.content.decode()
    assert Contact.objects.for_company(company).filter(email=EMAIL).exists()


def test_owner_erases_and_the_page_lists_the_record(company, owner):
    person_everywhere(company)
    response = owner.client.post(
        _url(company),
        {"kind": "external_id", "value": EXTERNAL_ID, "confirm": "on", "erase": "1"},
    )
    assert response.status_code == 302
    assert leftovers(company) == []
    page = owner.client.get(_url(company)).content.decode()
    assert "The person&#x27;s data was erased." in page or "data was erased" in page
    assert "Erasure" in page
    assert "External id" in page
    assert EXTERNAL_ID not in page


def test_unknown_person_and_bad_address_are_form_errors(company, owner):
    page = owner.client.post(
        _url(company),
        {"kind": "email", "value": "nobody@example.com", "confirm": "on", "erase": "1"},
    )
    assert "Nobody with this identifier was found." in page.content.decode()
    bad = owner.client.post(_url(company), {"kind": "email", "value": "nope", "export": "1"})
    assert bad.status_code == 200
    assert "Enter a valid email address." in bad.content.decode()
    assert not PersonalDataRequest.objects.for_company(company).exists()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_get_403(company, personas, role):
    person_everywhere(company)
    client = personas[role].client
    assert client.get(_url(company)).status_code == 403
    response = client.post(
        _url(company), {"kind": "email", "value": EMAIL, "confirm": "on", "erase": "1"}
    )
    assert response.status_code == 403
    assert Contact.objects.for_company(company).filter(email=EMAIL).exists()


def test_outsider_gets_404(company, outsider):
    person_everywhere(company)
    response = outsider.client.post(
        _url(company), {"kind": "email", "value": EMAIL, "confirm": "on", "erase": "1"}
    )
    assert response.status_code == 404
    assert Contact.objects.for_company(company).filter(email=EMAIL).exists()


# --- API ---------------------------------------------------------------------------------------


def _post(client, path, persona, body):
    return client.post(
        f"/api/v1/people/{path}/",
        data=json.dumps(body),
        content_type="application/json",
        **persona.headers,
    )


def test_api_export_and_erase(client, company, api_owner):
    person_everywhere(company)
    exported = _post(client, "export", api_owner, {"email": EMAIL})
    assert exported.status_code == 200
    assert [c["external_id"] for c in exported.json()["contacts"]] == [EXTERNAL_ID]
    erased = _post(client, "erase", api_owner, {"phone": "+7 701 123 45 67"})
    assert erased.status_code == 200
    body = erased.json()
    assert (body["kind"], body["identifier_kind"]) == ("erasure", "phone")
    assert body["counts"]["contacts"] == 1
    assert leftovers(company) == []
    kinds = PersonalDataRequest.objects.for_company(company).order_by("pk")
    assert [(r.kind, r.via, r.actor_api_key_id) for r in kinds] == [
        (RequestKind.EXPORT, RequestVia.API, api_owner.api_key.pk),
        (RequestKind.ERASURE, RequestVia.API, api_owner.api_key.pk),
    ]
    # Nobody left: an empty export, not an error.
    empty = _post(client, "export", api_owner, {"external_id": EXTERNAL_ID})
    assert empty.status_code == 200
    assert empty.json()["contacts"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": EMAIL, "phone": "+77011234567"}, "phone"),
        ({"email": "not-an-address"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"name": "Ana"}, "name"),
    ],
)
def test_api_bad_input_is_a_400_with_field_errors(client, company, api_owner, body, field):
    for path in ("export", "erase"):
        response = _post(client, path, api_owner, body)
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
    assert not PersonalDataRequest.objects.for_company(company).exists()


def test_api_read_only_key_gets_403_and_outsider_touches_nothing(
    client, company, api_viewer, api_outsider
):
    person_everywhere(company)
    for path in ("export", "erase"):
        assert _post(client, path, api_viewer, {"email": EMAIL}).status_code == 403
    # Another company's key finds nobody of ours, and erases nothing of ours.
    assert _post(client, "export", api_outsider, {"email": EMAIL}).json()["contacts"] == []
    assert _post(client, "erase", api_outsider, {"email": EMAIL}).status_code == 200
    assert Contact.objects.for_company(company).filter(email=EMAIL).exists()
    assert leftovers(company)
