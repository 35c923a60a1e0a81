"""The trust settings of issue 16 are in the audit log: the two-factor requirement, the
single sign-on connection and its domains, and the retention period."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from audit.models import ActorKind, AuditAction, AuditEntry
from audit.services import SECRET_MARK
from companies.models import Company, Role
from companies.tests.test_two_factor import give_totp, security_url
from conftest import Persona
from sso import dns_check
from sso.models import SsoConnection, SsoDomain
from sso.tests.fake_dns import FakeDns

pytestmark = pytest.mark.django_db

SECRET = "s3cret-value-1"
OIDC = {
    "kind": "oidc",
    "enabled": "on",
    "oidc_issuer": "https://login.acme.test/realms/staff/",
    "oidc_client_id": "nps",
    "oidc_client_secret": SECRET,
    "default_role": "agent",
}


def entries(company: Company, *actions: str) -> list[AuditEntry]:
    rows = AuditEntry.objects.for_company(company).filter(action__in=actions)
    return list(rows.order_by("created_at", "id"))


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


# --- Two-factor requirement ---------------------------------------------------------------------


def test_the_two_factor_requirement_is_audited_on_and_off(
    personas: dict[str, Persona], company: Company
) -> None:
    admin = personas[Role.ADMIN]
    give_totp(admin.user)
    admin.client.post(security_url(company), {"require_mfa": "on"})
    admin.client.post(security_url(company), {"require_mfa": "on"})  # unchanged: no line
    admin.client.post(security_url(company), {})

    on, off = entries(company, AuditAction.TWO_FACTOR_REQUIREMENT_CHANGED)
    assert on.changes == {"require_mfa": [False, True]}
    assert off.changes == {"require_mfa": [True, False]}
    assert (on.actor_kind, on.actor_user) == (ActorKind.MEMBER, admin.user)
    assert (on.target_type, on.target_label) == ("company", str(company))


def test_a_refused_two_factor_requirement_is_not_audited(
    personas: dict[str, Persona], company: Company
) -> None:
    personas[Role.ADMIN].client.post(security_url(company), {"require_mfa": "on"})
    assert entries(company, AuditAction.TWO_FACTOR_REQUIREMENT_CHANGED) == []


# --- Single sign-on -----------------------------------------------------------------------------


def _sso_url(company: Company, tail: str = "") -> str:
    return f"/c/{company.slug}/settings/sso/{tail}"


def test_sso_connection_create_update_disable_enable_are_audited_secret_masked(
    company: Company, owner: Persona, public_hosts: None
) -> None:
    assert owner.client.post(_sso_url(company), OIDC).status_code == 302
    changed = {**OIDC, "oidc_client_id": "nps-2", "oidc_client_secret": "an0ther-secret"}
    assert owner.client.post(_sso_url(company), changed).status_code == 302
    kept = {**changed, "oidc_client_secret": ""}  # empty: the stored secret stays
    owner.client.post(_sso_url(company), kept)  # unchanged: no line
    disabled = {k: v for k, v in kept.items() if k != "enabled"}
    owner.client.post(_sso_url(company), disabled)
    owner.client.post(_sso_url(company), kept)

    connection = SsoConnection.objects.for_company(company).get()
    created, updated, off, on = entries(
        company,
        AuditAction.SSO_CONNECTION_CREATED,
        AuditAction.SSO_CONNECTION_UPDATED,
        AuditAction.SSO_CONNECTION_DISABLED,
        AuditAction.SSO_CONNECTION_ENABLED,
    )
    assert [e.action for e in (created, updated, off, on)] == [
        AuditAction.SSO_CONNECTION_CREATED,
        AuditAction.SSO_CONNECTION_UPDATED,
        AuditAction.SSO_CONNECTION_DISABLED,
        AuditAction.SSO_CONNECTION_ENABLED,
    ]
    assert {e.target_id for e in (created, updated, off, on)} == {connection.public_id}
    assert {e.target_type for e in (created, updated, off, on)} == {"ssoconnection"}
    assert created.changes["oidc_issuer"] == [None, "https://login.acme.test/realms/staff"]
    assert created.changes["oidc_client_secret"] == [SECRET_MARK, SECRET_MARK]
    assert updated.changes == {
        "oidc_client_id": ["nps", "nps-2"],
        "oidc_client_secret": [SECRET_MARK, SECRET_MARK],
    }
    assert off.changes == {"enabled": [True, False]}
    assert on.changes == {"enabled": [False, True]}
    assert created.actor_user == owner.user
    table = json.dumps([e.changes for e in AuditEntry.objects.for_company(company)])
    assert SECRET not in table
    assert "an0ther-secret" not in table
    assert connection.oidc_client_secret_encrypted not in table


def test_sso_domain_add_verify_remove_are_audited(
    company: Company, owner: Persona, fake_dns: FakeDns
) -> None:
    owner.client.post(_sso_url(company, "domains/"), {"domain": "acme.test"})
    domain = SsoDomain.objects.for_company(company).get()
    fake_dns.txt["acme.test"] = [domain.txt_record]
    owner.client.post(_sso_url(company, f"domains/{domain.public_id}/verify/"))
    owner.client.post(_sso_url(company, f"domains/{domain.public_id}/verify/"))  # again: no line
    owner.client.post(_sso_url(company, f"domains/{domain.public_id}/remove/"))
    assert not SsoDomain.objects.for_company(company).exists()

    added, verified, removed = entries(
        company,
        AuditAction.SSO_DOMAIN_ADDED,
        AuditAction.SSO_DOMAIN_VERIFIED,
        AuditAction.SSO_DOMAIN_REMOVED,
    )
    assert [e.action for e in (added, verified, removed)] == [
        AuditAction.SSO_DOMAIN_ADDED,
        AuditAction.SSO_DOMAIN_VERIFIED,
        AuditAction.SSO_DOMAIN_REMOVED,
    ]
    for entry in (added, verified, removed):
        assert (entry.target_type, entry.target_id, entry.target_label) == (
            "ssodomain",
            domain.public_id,
            "acme.test",
        )
        assert entry.actor_user == owner.user


def test_an_unverified_domain_leaves_no_verified_line(
    company: Company, owner: Persona, fake_dns: FakeDns
) -> None:
    owner.client.post(_sso_url(company, "domains/"), {"domain": "acme.test"})
    domain = SsoDomain.objects.for_company(company).get()
    owner.client.post(_sso_url(company, f"domains/{domain.public_id}/verify/"))
    assert entries(company, AuditAction.SSO_DOMAIN_VERIFIED) == []


# --- Retention period (company settings) --------------------------------------------------------


def test_the_retention_period_flows_through_the_settings_audit(
    personas: dict[str, Persona], company: Company
) -> None:
    from tests.test_retention import form_data, settings_url

    admin = personas[Role.ADMIN]
    admin.client.post(settings_url(company), form_data(company, retention_months="24"))
    admin.client.post(settings_url(company), form_data(company, retention_months="24"))
    admin.client.post(settings_url(company), form_data(company, retention_months=""))

    set_, cleared = entries(company, AuditAction.SETTINGS_UPDATED)
    assert set_.changes == {"retention_months": [None, 24]}
    assert cleared.changes == {"retention_months": [24, None]}
    assert (set_.actor_kind, set_.actor_user) == (ActorKind.MEMBER, admin.user)
