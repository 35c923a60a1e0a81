"""OpenID Connect sign-in through allauth's real provider against a fake IdP on loopback."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client

from companies.models import Company, Membership, Role, User
from conftest import add_member, make_user
from sso.tests.conftest import idp_url, oidc_connection, oidc_sign_in, verified_domain
from sso.tests.fake_oidc import FakeOidcProvider

pytestmark = pytest.mark.django_db


def _claims(email: str, sub: str = "idp-user-1") -> dict[str, object]:
    return {"sub": sub, "email": email, "email_verified": True, "name": "Jane Doe"}


def test_first_sign_in_creates_the_user_and_a_member_with_the_default_role(
    company: Company, idp: FakeOidcProvider
):
    oidc_connection(company, idp, default_role=Role.MANAGER)
    verified_domain(company, "acme.test")
    idp.claims = _claims("jane@acme.test")

    response = oidc_sign_in(Client(), "jane@acme.test")

    assert response.status_code == 302
    assert response["Location"] == f"/c/{company.slug}/"
    user = User.objects.get(email="jane@acme.test")
    membership = Membership.objects.for_company(company).get(user=user)
    assert membership.role == Role.MANAGER
    assert user.first_name == "Jane"
    assert not user.has_usable_password()
    account = SocialAccount.objects.get(user=user)
    assert account.uid == "idp-user-1"
    # The token request carried the company's own client credentials.
    assert idp.token_requests[-1]["client_secret"] == idp.client_secret


def test_the_signed_in_user_reaches_the_company_pages(company: Company, idp: FakeOidcProvider):
    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    idp.claims = _claims("jane@acme.test")
    client = Client()
    oidc_sign_in(client, "jane@acme.test")

    assert client.get(f"/c/{company.slug}/").status_code == 200


def test_sso_by_company_id(company: Company, idp: FakeOidcProvider):
    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    idp.claims = _claims("jane@acme.test")

    response = oidc_sign_in(Client(), company.slug)

    assert response.status_code == 302
    assert User.objects.filter(email="jane@acme.test").exists()


def test_existing_user_signs_in_to_their_account_and_joins(
    company: Company, other_company: Company, idp: FakeOidcProvider
):
    """A person who already has an account (here: another company's member) is signed in to
    that account, not given a second one, and joins with the default role."""
    oidc_connection(company, idp, default_role=Role.VIEWER)
    verified_domain(company, "acme.test")
    existing = add_member(other_company, "sam@acme.test", Role.ADMIN)
    idp.claims = _claims("sam@acme.test", sub="sam")

    response = oidc_sign_in(Client(), "sam@acme.test")

    assert response.status_code == 302
    assert User.objects.filter(email="sam@acme.test").count() == 1
    assert Membership.objects.for_company(company).get(user=existing).role == Role.VIEWER
    # Their other membership is untouched.
    assert Membership.objects.for_company(other_company).get(user=existing).role == Role.ADMIN


def test_an_existing_member_keeps_their_role(company: Company, idp: FakeOidcProvider):
    oidc_connection(company, idp, default_role=Role.VIEWER)
    verified_domain(company, "acme.test")
    member = add_member(company, "ann@acme.test", Role.ADMIN)
    idp.claims = _claims("ann@acme.test", sub="ann")

    oidc_sign_in(Client(), "ann@acme.test")

    assert Membership.objects.for_company(company).get(user=member).role == Role.ADMIN


def test_an_email_outside_the_verified_domains_is_refused(company: Company, idp: FakeOidcProvider):
    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    # The person asks for acme's IdP, but the IdP answers with an address elsewhere.
    idp.claims = _claims("mallory@elsewhere.test")

    response = oidc_sign_in(Client(), "jane@acme.test")

    assert response.status_code == 403
    assert "not in a verified domain" in response.content.decode()
    assert not User.objects.filter(email="mallory@elsewhere.test").exists()
    assert Membership.objects.for_company(company).count() == 1  # the owner only


def test_an_unverified_domain_never_grants_membership(company: Company, idp: FakeOidcProvider):
    from sso.models import SsoDomain

    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    SsoDomain.objects.create(company=company, domain="unproven.test")  # listed, not verified
    idp.claims = _claims("eve@unproven.test")

    response = oidc_sign_in(Client(), company.slug)

    assert response.status_code == 403
    assert not User.objects.filter(email="eve@unproven.test").exists()


def test_company_a_idp_never_grants_membership_in_b(
    company: Company, other_company: Company, idp: FakeOidcProvider
):
    """Globex verified globex.test; Acme's IdP says "I am bob@globex.test": refused, and Bob
    joins neither company (Acme's IdP does not answer for Globex's domain)."""
    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    verified_domain(other_company, "globex.test")
    idp.claims = _claims("bob@globex.test")

    response = oidc_sign_in(Client(), company.slug)

    assert response.status_code == 403
    assert not User.objects.filter(email="bob@globex.test").exists()
    assert Membership.objects.for_company(other_company).count() == 1


def test_a_disabled_connection_does_not_start(company: Company, idp: FakeOidcProvider):
    connection = oidc_connection(company, idp, enabled=False)
    verified_domain(company, "acme.test")

    response = Client().post("/accounts/sso/", {"identifier": "jane@acme.test"})

    assert response.status_code == 200
    assert "not set up" in response.content.decode()
    # allauth's own URLs for it do not exist either.
    assert Client().post(f"/accounts/oidc/sso-{connection.public_id}/login/").status_code == 404


def test_unknown_domain_is_a_form_error():
    response = Client().post("/accounts/sso/", {"identifier": "who@nowhere.test"})
    assert response.status_code == 200
    assert "not set up" in response.content.decode()


def test_the_authorize_request_is_for_this_company_only(
    company: Company, other_company: Company, idp: FakeOidcProvider
):
    """Each company's button goes to its own IdP with its own client id."""
    other_idp = FakeOidcProvider(client_id="globex-client").start()
    try:
        oidc_connection(company, idp)
        verified_domain(company, "acme.test")
        oidc_connection(other_company, other_idp)
        verified_domain(other_company, "globex.test")

        acme = idp_url(Client().post("/accounts/sso/", {"identifier": "x@acme.test"}))
        globex = idp_url(Client().post("/accounts/sso/", {"identifier": "x@globex.test"}))

        assert acme.startswith(idp.issuer)
        assert parse_qs(urlparse(acme).query)["client_id"] == [idp.client_id]
        assert globex.startswith(other_idp.issuer)
        assert parse_qs(urlparse(globex).query)["client_id"] == ["globex-client"]
    finally:
        other_idp.stop()


def test_a_private_issuer_is_refused_when_private_addresses_are_off(
    company: Company, idp: FakeOidcProvider, settings
):
    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    response = Client().post("/accounts/sso/", {"identifier": "jane@acme.test"})

    # Discovery is refused before any request leaves.
    assert response.status_code == 200
    assert "could not be reached" in response.content.decode()
    assert not User.objects.filter(email="jane@acme.test").exists()


def test_list_apps_answers_nothing_without_a_connection_name(
    company: Company, idp: FakeOidcProvider, rf
):
    from allauth.socialaccount.adapter import get_adapter

    oidc_connection(company, idp)
    adapter = get_adapter()
    assert adapter.list_apps(rf.get("/")) == []
    assert adapter.list_apps(rf.get("/"), provider="openid_connect") == []


def test_make_user_helper_untouched():
    make_user("plain@example.test")


def test_an_account_squatted_with_an_unverified_email_loses_its_password(
    company: Company, idp: FakeOidcProvider
):
    """Someone signed up as jane@acme.test with a password, never confirmed it, and waits for
    Jane to join through SSO: the account Jane signs in to keeps no password they know."""
    from allauth.account.models import EmailAddress

    from companies.services import user_create

    squatter = user_create(email="jane@acme.test", password="squatters-pass-123")
    EmailAddress.objects.create(user=squatter, email="jane@acme.test", verified=False, primary=True)
    oidc_connection(company, idp)
    verified_domain(company, "acme.test")
    idp.claims = _claims("jane@acme.test")

    response = oidc_sign_in(Client(), "jane@acme.test")

    assert response.status_code == 302
    squatter.refresh_from_db()
    assert Membership.objects.for_company(company).filter(user=squatter).exists()
    assert not squatter.has_usable_password()
