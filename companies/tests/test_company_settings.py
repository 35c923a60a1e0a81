"""Company settings page (/c/<slug>/settings/) and the company_update service."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from companies.models import Company, Role
from companies.services import company_update
from conftest import Persona

pytestmark = pytest.mark.django_db


def settings_url(company: Company) -> str:
    return reverse("companies:settings", kwargs={"company_slug": company.slug})


def good_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Acme Coffee Almaty",
        "industry": "hospitality",
        "country": "kz",
        "time_zone": "Asia/Almaty",
        "default_language": "ru",
        "sender_name": "Acme Coffee Team",
        "reply_to": "care@acme.test",
    }
    data.update(overrides)
    return data


def snapshot(company: Company) -> dict[str, Any]:
    company.refresh_from_db()
    return {field: getattr(company, field) for field in good_data()}


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_admins_edit_settings(personas: dict[str, Persona], company: Company, role: str) -> None:
    client = personas[role].client

    page = client.get(settings_url(company))
    assert page.status_code == 200
    assert 'name="reply_to"' in page.content.decode()

    response = client.post(settings_url(company), good_data(), follow=True)

    assert response.redirect_chain[-1][0] == settings_url(company)
    assert "Company settings saved." in response.content.decode()
    assert snapshot(company) == {**good_data(), "country": "KZ"}


def test_settings_link_shows_only_for_admins(
    personas: dict[str, Persona], company: Company
) -> None:
    overview = reverse("companies:overview", kwargs={"company_slug": company.slug})
    assert settings_url(company) in personas[Role.ADMIN].client.get(overview).content.decode()
    assert settings_url(company) not in personas[Role.MANAGER].client.get(overview).content.decode()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_get_403(personas: dict[str, Persona], company: Company, role: str) -> None:
    before = snapshot(company)
    client = personas[role].client
    assert client.get(settings_url(company)).status_code == 403
    assert client.post(settings_url(company), good_data()).status_code == 403
    assert snapshot(company) == before


def test_outsider_gets_404(outsider: Persona, company: Company) -> None:
    before = snapshot(company)
    assert outsider.client.get(settings_url(company)).status_code == 404
    assert outsider.client.post(settings_url(company), good_data()).status_code == 404
    assert snapshot(company) == before


def test_anonymous_is_sent_to_login(client: Client, company: Company) -> None:
    response = client.get(settings_url(company))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert client.post(settings_url(company), good_data()).status_code == 302


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reply_to": "not-an-email"}, "reply_to"),
        ({"country": "XX"}, "country"),
        ({"country": "Kazakhstan"}, "country"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"industry": "astrology"}, "industry"),
        ({"default_language": "tlh"}, "default_language"),
        ({"name": "   "}, "name"),
    ],
)
def test_bad_input_gives_field_errors_and_saves_nothing(
    owner: Persona, company: Company, overrides: dict[str, str], field: str
) -> None:
    before = snapshot(company)

    response = owner.client.post(settings_url(company), good_data(**overrides))

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert 'class="field has-error' in response.content.decode()
    assert snapshot(company) == before
    # The header still shows the saved name, not the rejected one.
    assert response.context["company"].name == before["name"]


def test_company_update_service_validates_and_is_all_or_nothing(company: Company) -> None:
    before = snapshot(company)
    with pytest.raises(ValidationError) as caught:
        company_update(company=company, name="New name", reply_to="nope")
    assert "reply_to" in caught.value.message_dict
    assert snapshot(company) == before

    with pytest.raises(TypeError):
        company_update(company=company, slug="mine")

    company_update(company=company, country="us", sender_name="Acme")
    assert (company.country, company.sender_name) == ("US", "Acme")
    assert snapshot(company)["country"] == "US"
