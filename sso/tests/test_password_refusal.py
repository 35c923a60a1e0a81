"""'SSO required': password sign-in, sign-up and reset refused for the company's domains."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from companies.models import Company, User
from conftest import PASSWORD, make_user
from sso.models import SsoConnection, SsoDomain

pytestmark = pytest.mark.django_db


def _require_sso(company: Company, *, verified: bool = True, enabled: bool = True) -> None:
    SsoConnection.objects.create(
        company=company,
        kind="oidc",
        enabled=enabled,
        oidc_issuer="https://idp.acme.test",
        oidc_client_id="x",
        sso_required=True,
    )
    SsoDomain.objects.create(
        company=company, domain="acme.test", verified_at=timezone.now() if verified else None
    )


def _password_login(email: str) -> tuple[Client, Any]:
    client = Client()
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    return client, response


def test_password_sign_in_is_refused_with_a_pointer_to_sso(company: Company):
    _require_sso(company)
    client, response = _password_login("owner@acme.test")

    assert response.status_code == 200
    body = response.content.decode()
    assert "sign in with single sign-on" in body
    assert "/accounts/sso/?email=owner%40acme.test" in body
    assert "_auth_user_id" not in client.session


def test_password_sign_in_works_without_sso_required(company: Company):
    SsoConnection.objects.create(company=company, kind="oidc", sso_required=False)
    SsoDomain.objects.create(company=company, domain="acme.test", verified_at=timezone.now())
    client, response = _password_login("owner@acme.test")

    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_an_unverified_domain_locks_nobody_out(company: Company):
    _require_sso(company, verified=False)
    _client, response = _password_login("owner@acme.test")
    assert response.status_code == 302


def test_a_disabled_connection_locks_nobody_out(company: Company):
    _require_sso(company, enabled=False)
    _client, response = _password_login("owner@acme.test")
    assert response.status_code == 302


def test_other_domains_sign_in_with_a_password(company: Company):
    _require_sso(company)
    make_user("someone@elsewhere.test")
    _client, response = _password_login("someone@elsewhere.test")
    assert response.status_code == 302


def test_password_reset_is_refused_and_sends_nothing(company: Company):
    _require_sso(company)
    mail.outbox.clear()

    response = Client().post("/accounts/password/reset/", {"email": "owner@acme.test"})

    assert response.status_code == 200
    assert "sign in with single sign-on" in response.content.decode()
    assert mail.outbox == []


def test_password_reset_for_other_domains_still_works(company: Company):
    _require_sso(company)
    make_user("someone@elsewhere.test")
    mail.outbox.clear()

    response = Client().post("/accounts/password/reset/", {"email": "someone@elsewhere.test"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1


def test_sign_up_with_a_password_is_refused(company: Company):
    _require_sso(company)

    response = Client().post(
        "/accounts/signup/",
        {
            "email": "new@acme.test",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
            "company_name": "Shadow IT",
            "industry": "retail",
            "time_zone": "UTC",
        },
    )

    assert response.status_code == 200
    assert "sign in with single sign-on" in response.content.decode()
    assert not User.objects.filter(email="new@acme.test").exists()


def test_the_login_page_offers_sso():
    body = Client().get("/accounts/login/").content.decode()
    assert 'href="/accounts/sso/"' in body
