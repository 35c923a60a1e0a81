"""API keys from the web: create (shown once), use against the API, revoke."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from companies.models import ApiKey, Role
from companies.services import api_key_create, sha256

pytestmark = pytest.mark.django_db

KEY_PATTERN = re.compile(r"nps_[0-9a-f]{8}_[\w-]{20,}")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def keys_url(company) -> str:
    return reverse("companies:api_keys", kwargs={"company_slug": company.slug})


def revoke_url(api_key: ApiKey) -> str:
    return reverse(
        "companies:api_key_revoke",
        kwargs={"company_slug": api_key.company.slug, "key_id": api_key.public_id},
    )


def keys_of(company) -> list[ApiKey]:
    return list(ApiKey.objects.for_company(company))


def call_api(key: str):
    return Client().get(reverse("api-company"), HTTP_AUTHORIZATION=f"Bearer {key}")


# --- Who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_admins_see_the_page(personas, company, role):
    assert personas[role].client.get(keys_url(company)).status_code == 200


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_get_403(personas, company, role):
    client = personas[role].client
    assert client.get(keys_url(company)).status_code == 403
    assert client.post(keys_url(company), {"name": "x", "role": "admin"}).status_code == 403
    assert keys_of(company) == []


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_revoke(personas, company, role):
    api_key = api_key_create(company=company, name="ci").api_key
    assert personas[role].client.post(revoke_url(api_key)).status_code == 403
    api_key.refresh_from_db()
    assert api_key.is_active


def test_outsider_and_anonymous(outsider, company):
    api_key = api_key_create(company=company, name="ci").api_key
    assert outsider.client.get(keys_url(company)).status_code == 404
    assert (
        outsider.client.post(keys_url(company), {"name": "x", "role": "admin"}).status_code == 404
    )
    assert outsider.client.post(revoke_url(api_key)).status_code == 404
    # Our key's id under the outsider's own company: not found either.
    theirs = reverse(
        "companies:api_key_revoke",
        kwargs={"company_slug": outsider.company.slug, "key_id": api_key.public_id},
    )
    assert outsider.client.post(theirs).status_code == 404
    response = Client().get(keys_url(company))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    api_key.refresh_from_db()
    assert api_key.is_active
    assert [k.name for k in keys_of(company)] == ["ci"]


# --- The list -----------------------------------------------------------------------------------


def test_list_shows_prefix_access_creator_and_use(personas, company, other_company):
    admin = personas[Role.ADMIN]
    full = api_key_create(company=company, name="CRM sync", created_by=admin.user)
    read = api_key_create(company=company, name="BI export", role=Role.VIEWER)
    api_key_create(company=other_company, name="Their key")
    assert call_api(read.key).status_code == 200  # sets last_used_at
    body = admin.client.get(keys_url(company)).content.decode()
    assert "CRM sync" in body
    assert "BI export" in body
    assert "Their key" not in body
    assert f"nps_{full.api_key.prefix}_…" in body
    assert "Full access" in body
    assert "Read only" in body
    assert str(admin.user) in body
    assert "command line" in body  # no creator: made by the CLI
    assert "never" in body  # the full-access key was never used
    # The secret part of a key never appears in the list.
    assert full.key not in body
    assert read.key not in body
    assert not KEY_PATTERN.search(body)


# --- Create, shown once -------------------------------------------------------------------------


def test_created_key_is_shown_once_and_works(personas, company):
    admin = personas[Role.ADMIN]
    response = admin.client.post(keys_url(company), {"name": "Zapier", "role": Role.ADMIN})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    match = KEY_PATTERN.search(body)
    assert match, body
    key = match.group(0)
    assert "only time it is shown" in body

    api_key = ApiKey.objects.for_company(company).get()
    assert api_key.name == "Zapier"
    assert api_key.role == Role.ADMIN
    assert api_key.created_by == admin.user
    assert api_key.key_hash == sha256(key)
    assert key.startswith(f"nps_{api_key.prefix}_")

    # The next view of the page does not contain it.
    again = admin.client.get(keys_url(company)).content.decode()
    assert key not in again
    assert not KEY_PATTERN.search(again)

    # It works against the API, and its use is recorded.
    assert api_key.last_used_at is None
    response = call_api(key)
    assert response.status_code == 200
    assert response.json()["slug"] == company.slug
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert "ago" in admin.client.get(keys_url(company)).content.decode()


def test_read_only_key_from_the_web(owner, company):
    response = owner.client.post(keys_url(company), {"name": "BI", "role": Role.VIEWER})
    assert response.status_code == 201
    assert ApiKey.objects.for_company(company).get().role == Role.VIEWER


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "role": "admin"}, "name", "required"),
        ({"name": "   ", "role": "admin"}, "name", "required"),
        ({"name": "x" * 81, "role": "admin"}, "name", "at most 80"),
        ({"name": "ok", "role": "owner"}, "role", "valid choice"),
        ({"name": "ok"}, "role", "required"),
    ],
)
def test_bad_input_is_a_form_error(owner, company, data, field, message):
    response = owner.client.post(keys_url(company), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in error for error in errors[field]), errors
    assert not KEY_PATTERN.search(response.content.decode())
    assert keys_of(company) == []


# --- Revoke -------------------------------------------------------------------------------------


def test_revoked_key_stops_working_at_once(personas, company):
    admin = personas[Role.ADMIN]
    issued = api_key_create(company=company, name="ci")
    assert call_api(issued.key).status_code == 200
    response = admin.client.post(revoke_url(issued.api_key))
    assert response.status_code == 302
    assert response["Location"] == keys_url(company)
    response = call_api(issued.key)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None
    body = admin.client.get(keys_url(company)).content.decode()
    assert "Revoked" in body
    assert revoke_url(issued.api_key) not in body  # no second revoke button


def test_revoke_is_post_only(owner, company):
    api_key = api_key_create(company=company, name="ci").api_key
    assert owner.client.get(revoke_url(api_key)).status_code == 405
    api_key.refresh_from_db()
    assert api_key.is_active


def test_revoke_leaves_other_keys_alone(owner, company):
    one = api_key_create(company=company, name="one")
    two = api_key_create(company=company, name="two")
    owner.client.post(revoke_url(one.api_key))
    assert call_api(one.key).status_code == 401
    assert call_api(two.key).status_code == 200


def test_unknown_key_id_is_404(owner, company):
    url = reverse(
        "companies:api_key_revoke", kwargs={"company_slug": company.slug, "key_id": "nope"}
    )
    assert owner.client.post(url).status_code == 404
