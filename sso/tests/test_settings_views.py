"""The company's single sign-on settings page (admins) and its domain actions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from companies.models import Company, Role
from conftest import Persona, add_member, logged_in
from sso import dns_check
from sso.models import SsoConnection, SsoDomain
from sso.tests.fake_dns import FakeDns

pytestmark = pytest.mark.django_db

OIDC = {
    "kind": "oidc",
    "enabled": "on",
    "oidc_issuer": "https://login.acme.test/realms/staff/",
    "oidc_client_id": "nps",
    "oidc_client_secret": "s3cret-value-1",
    "default_role": "agent",
}


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    server = FakeDns().start()
    monkeypatch.setattr(dns_check, "resolver", server.resolver)
    yield server
    server.stop()


@pytest.fixture
def public_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """login.acme.test resolves to a public address (the issuer check resolves the host)."""
    from notifications import http_client

    monkeypatch.setattr(http_client, "_getaddrinfo", lambda host, port: ["93.184.216.34"])


def _url(company: Company, tail: str = "") -> str:
    return f"/c/{company.slug}/settings/sso/{tail}"


def test_admin_saves_an_oidc_connection_with_the_secret_encrypted(
    company: Company, owner: Persona, public_hosts: None
):
    response = owner.client.post(_url(company), OIDC)

    assert response.status_code == 302
    connection = SsoConnection.objects.for_company(company).get()
    assert connection.oidc_issuer == "https://login.acme.test/realms/staff"
    assert connection.default_role == Role.AGENT
    assert "s3cret-value-1" not in connection.oidc_client_secret_encrypted
    page = owner.client.get(_url(company)).content.decode()
    assert "s3cret-value-1" not in page
    # What the IdP administrator registers on their side.
    assert f"/accounts/oidc/sso-{connection.public_id}/login/callback/" in page


def test_an_empty_secret_keeps_the_saved_one(company: Company, owner: Persona, public_hosts: None):
    owner.client.post(_url(company), OIDC)
    saved = SsoConnection.objects.for_company(company).get().oidc_client_secret_encrypted

    response = owner.client.post(
        _url(company), {**OIDC, "oidc_client_secret": "", "default_role": "viewer"}
    )

    assert response.status_code == 302
    connection = SsoConnection.objects.for_company(company).get()
    assert connection.oidc_client_secret_encrypted == saved
    assert connection.default_role == Role.VIEWER


def test_missing_fields_are_form_errors(company: Company, owner: Persona):
    response = owner.client.post(_url(company), {"kind": "oidc", "default_role": "agent"})

    assert response.status_code == 200
    body = response.content.decode()
    assert "Enter the issuer URL" in body
    assert "Enter the client ID." in body
    assert "Enter the client secret." in body
    assert not SsoConnection.objects.for_company(company).exists()


def test_owner_is_not_a_default_role(company: Company, owner: Persona, public_hosts: None):
    response = owner.client.post(_url(company), {**OIDC, "default_role": "owner"})
    assert response.status_code == 200
    assert not SsoConnection.objects.for_company(company).exists()


def test_a_private_issuer_is_refused(company: Company, owner: Persona, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = owner.client.post(_url(company), {**OIDC, "oidc_issuer": "http://10.0.0.5/"})
    assert response.status_code == 200
    assert "private or reserved" in response.content.decode()
    assert not SsoConnection.objects.for_company(company).exists()


def test_a_manager_may_not_see_or_change_sso(company: Company):
    manager = logged_in(add_member(company, "manager@acme.test", Role.MANAGER))
    assert manager.get(_url(company)).status_code == 403
    assert manager.post(_url(company), OIDC).status_code == 403
    assert manager.post(_url(company, "domains/"), {"domain": "acme.test"}).status_code == 403
    assert not SsoConnection.objects.for_company(company).exists()
    assert not SsoDomain.objects.for_company(company).exists()


def test_an_outsider_gets_404(company: Company, outsider: Persona):
    assert outsider.client.get(_url(company)).status_code == 404
    assert outsider.client.post(_url(company, "domains/"), {"domain": "x.test"}).status_code == 404


def test_add_verify_and_remove_a_domain(company: Company, owner: Persona, fake_dns: FakeDns):
    response = owner.client.post(_url(company, "domains/"), {"domain": "Acme.test"})
    assert response.status_code == 302
    domain = SsoDomain.objects.for_company(company).get()
    page = owner.client.get(_url(company)).content.decode()
    assert f"nps-saas-verification={domain.token}" in page

    # Not published yet: a clear message, still unverified.
    response = owner.client.post(_url(company, f"domains/{domain.public_id}/verify/"), follow=True)
    assert "No TXT record" in response.content.decode()
    domain.refresh_from_db()
    assert domain.verified_at is None

    fake_dns.txt["acme.test"] = [domain.txt_record]
    owner.client.post(_url(company, f"domains/{domain.public_id}/verify/"))
    domain.refresh_from_db()
    assert domain.verified_at is not None

    owner.client.post(_url(company, f"domains/{domain.public_id}/remove/"))
    assert not SsoDomain.objects.for_company(company).exists()


def test_a_bad_domain_is_a_clear_message(company: Company, owner: Persona):
    response = owner.client.post(_url(company, "domains/"), {"domain": "not a domain"}, follow=True)
    assert "Enter a domain such as example.com." in response.content.decode()
    assert not SsoDomain.objects.for_company(company).exists()


def test_another_companys_domain_is_404_under_your_own_slug(
    company: Company, outsider: Persona, fake_dns: FakeDns
):
    ours = SsoDomain.objects.create(company=company, domain="acme.test")
    fake_dns.txt["acme.test"] = [ours.txt_record]
    for action in ("verify", "remove"):
        url = f"/c/{outsider.company.slug}/settings/sso/domains/{ours.public_id}/{action}/"
        assert outsider.client.post(url).status_code == 404
    ours.refresh_from_db()
    assert ours.verified_at is None


def test_anonymous_is_sent_to_log_in(company: Company):
    response = Client().get(_url(company))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
