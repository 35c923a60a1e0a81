"""SAML sign-in through allauth's real saml provider (python3-saml), with responses signed in
the test by a key and certificate it generates."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from companies.models import Company, Membership, Role, User
from conftest import add_member
from sso.models import SsoConnection, SsoDomain
from sso.services import sso_connection_save
from sso.tests.conftest import idp_url
from sso.tests.fake_saml import FakeSamlIdp, SamlRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def idp() -> FakeSamlIdp:
    return FakeSamlIdp()


def _browser() -> Client:
    # python3-saml rebuilds the URL it was posted to from the Host header.
    return Client(HTTP_HOST="testserver")


def saml_connection(
    company: Company, idp: FakeSamlIdp, *, domain: str = "acme.test", **options: Any
) -> SsoConnection:
    values: dict[str, Any] = {
        "kind": "saml",
        "enabled": True,
        "default_role": Role.AGENT,
        "sso_required": False,
        "saml_entity_id": idp.entity_id,
        "saml_sso_url": idp.sso_url,
        "saml_x509_cert": idp.cert_pem,
    }
    values.update(options)
    connection = sso_connection_save(company=company, **values)
    SsoDomain.objects.get_or_create(
        company=company, domain=domain, defaults={"verified_at": timezone.now()}
    )
    return connection


def _start(client: Client, identifier: str = "jane@acme.test") -> SamlRequest:
    url = idp_url(client.post("/accounts/sso/", {"identifier": identifier}))
    assert url.startswith(FakeSamlIdp.sso_url)
    return FakeSamlIdp.read_request(url)


def _post_to_acs(client: Client, request: SamlRequest, saml_response: str) -> Any:
    acs_path = request.acs_url.removeprefix("http://testserver")
    response = client.post(acs_path, {"SAMLResponse": saml_response})
    assert response.status_code == 302
    return client.get(response["Location"])


def test_a_signed_assertion_signs_in_and_grants_membership(company: Company, idp: FakeSamlIdp):
    connection = saml_connection(company, idp, default_role=Role.MANAGER)
    client = _browser()
    request = _start(client)
    assert request.acs_url == f"http://testserver/accounts/saml/sso-{connection.public_id}/acs/"

    response = _post_to_acs(client, request, idp.response(request, email="jane@acme.test"))

    assert response.status_code == 302
    assert response["Location"] == f"/c/{company.slug}/"
    user = User.objects.get(email="jane@acme.test")
    assert Membership.objects.for_company(company).get(user=user).role == Role.MANAGER
    assert SocialAccount.objects.get(user=user).provider == f"sso-{connection.public_id}"
    assert client.get(f"/c/{company.slug}/").status_code == 200


def test_an_existing_member_keeps_their_role(company: Company, idp: FakeSamlIdp):
    saml_connection(company, idp, default_role=Role.VIEWER)
    member = add_member(company, "ann@acme.test", Role.ADMIN)
    client = _browser()
    request = _start(client, "ann@acme.test")

    response = _post_to_acs(client, request, idp.response(request, email="ann@acme.test"))

    assert response.status_code == 302
    assert Membership.objects.for_company(company).get(user=member).role == Role.ADMIN


def test_an_unsigned_response_is_refused(company: Company, idp: FakeSamlIdp):
    saml_connection(company, idp)
    client = _browser()
    request = _start(client)

    response = _post_to_acs(
        client, request, idp.response(request, email="jane@acme.test", sign=False)
    )

    assert response.status_code == 401
    assert not User.objects.filter(email="jane@acme.test").exists()


def test_a_response_signed_by_another_key_is_refused(company: Company, idp: FakeSamlIdp):
    saml_connection(company, idp)
    impostor = FakeSamlIdp()
    client = _browser()
    request = _start(client)

    saml_response = idp.response(request, email="jane@acme.test", signing_keys=impostor.keys)
    response = _post_to_acs(client, request, saml_response)

    assert response.status_code == 401
    assert not User.objects.filter(email="jane@acme.test").exists()


def test_a_tampered_response_is_refused(company: Company, idp: FakeSamlIdp):
    """Signed for jane, then edited to say boss: the signature no longer matches."""
    import base64

    saml_connection(company, idp)
    client = _browser()
    request = _start(client)
    signed = base64.b64decode(idp.response(request, email="jane@acme.test")).decode()
    forged = base64.b64encode(signed.replace("jane@acme.test", "boss@acme.test").encode()).decode()

    response = _post_to_acs(client, request, forged)

    assert response.status_code == 401
    assert not User.objects.filter(email__in=["jane@acme.test", "boss@acme.test"]).exists()


def test_an_email_outside_the_verified_domains_is_refused(company: Company, idp: FakeSamlIdp):
    saml_connection(company, idp)
    client = _browser()
    request = _start(client)

    response = _post_to_acs(client, request, idp.response(request, email="eve@elsewhere.test"))

    assert response.status_code == 403
    assert not User.objects.filter(email="eve@elsewhere.test").exists()


def test_company_a_idp_never_grants_membership_in_b(
    company: Company, other_company: Company, idp: FakeSamlIdp
):
    saml_connection(company, idp)
    SsoDomain.objects.create(
        company=other_company, domain="globex.test", verified_at=timezone.now()
    )
    client = _browser()
    request = _start(client)

    response = _post_to_acs(client, request, idp.response(request, email="bob@globex.test"))

    assert response.status_code == 403
    assert not User.objects.filter(email="bob@globex.test").exists()
    assert Membership.objects.for_company(other_company).count() == 1


def test_company_a_idp_cannot_sign_in_to_company_b(
    company: Company, other_company: Company, idp: FakeSamlIdp
):
    """Acme's IdP answers a sign-in that Globex's page started (Globex trusts another IdP):
    its signature is not Globex's IdP's, so nobody signs in or joins Globex."""
    saml_connection(company, idp)
    globex_idp = FakeSamlIdp(entity_id="https://idp.globex.test/saml")
    saml_connection(other_company, globex_idp, domain="globex.test")
    client = _browser()
    globex_request = _start(client, "bob@globex.test")

    forged = idp.response(globex_request, email="bob@globex.test", issuer=globex_idp.entity_id)
    response = _post_to_acs(client, globex_request, forged)

    assert response.status_code == 401
    assert not User.objects.filter(email="bob@globex.test").exists()
    assert Membership.objects.for_company(other_company).count() == 1


def test_a_response_at_another_acs_is_refused(
    company: Company, other_company: Company, idp: FakeSamlIdp
):
    """A genuine response for Acme, replayed at Globex's ACS: its Destination is not there."""
    saml_connection(company, idp)
    globex = saml_connection(
        other_company, FakeSamlIdp(entity_id="https://idp.globex.test/saml"), domain="globex.test"
    )
    client = _browser()
    request = _start(client)
    replay = SamlRequest(
        id=request.id,
        acs_url=f"http://testserver/accounts/saml/sso-{globex.public_id}/acs/",
        sp_entity_id=request.sp_entity_id,
    )
    response = _post_to_acs(client, replay, idp.response(request, email="jane@acme.test"))

    assert response.status_code == 401
    assert not User.objects.filter(email="jane@acme.test").exists()


def test_a_response_to_a_request_we_never_made_is_refused(company: Company, idp: FakeSamlIdp):
    connection = saml_connection(company, idp)
    acs = f"http://testserver/accounts/saml/sso-{connection.public_id}/acs/"
    unsolicited = SamlRequest(
        id="_never-asked",
        acs_url=acs,
        sp_entity_id=f"http://testserver/accounts/saml/sso-{connection.public_id}/metadata/",
    )

    response = _post_to_acs(
        _browser(), unsolicited, idp.response(unsolicited, email="jane@acme.test")
    )

    # A genuine signature, but no sign-in of this browser waits for it.
    assert response.status_code == 403
    assert not User.objects.filter(email="jane@acme.test").exists()


def test_metadata_pasted_fills_the_idp_fields(company: Company, idp: FakeSamlIdp):
    connection = sso_connection_save(
        company=company,
        kind="saml",
        enabled=True,
        default_role=Role.VIEWER,
        sso_required=False,
        saml_metadata=idp.metadata(),
    )
    assert connection.saml_entity_id == idp.entity_id
    assert connection.saml_sso_url == idp.sso_url
    assert connection.saml_x509_cert in "".join(idp.cert_pem.split())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("saml_x509_cert", "not a certificate", "signing certificate"),
        ("saml_metadata", "<not-metadata/>", "not IdP metadata"),
        ("saml_sso_url", "", "sign-in URL"),
    ],
)
def test_bad_saml_settings_are_field_errors(
    company: Company, idp: FakeSamlIdp, field: str, value: str, message: str
):
    values: dict[str, Any] = {
        "saml_entity_id": idp.entity_id,
        "saml_sso_url": idp.sso_url,
        "saml_x509_cert": idp.cert_pem,
        field: value,
    }
    with pytest.raises(ValidationError) as caught:
        sso_connection_save(
            company=company,
            kind="saml",
            enabled=True,
            default_role=Role.VIEWER,
            sso_required=False,
            **values,
        )
    errors = caught.value.message_dict
    assert any(message in error for messages in errors.values() for error in messages)
    assert not SsoConnection.objects.for_company(company).exists()


def test_the_settings_page_shows_what_the_idp_needs(company: Company, idp: FakeSamlIdp, owner: Any):
    connection = saml_connection(company, idp)
    page = owner.client.get(f"/c/{company.slug}/settings/sso/", HTTP_HOST="testserver")
    body = page.content.decode()
    assert f"http://testserver/accounts/saml/sso-{connection.public_id}/acs/" in body
    assert f"http://testserver/accounts/saml/sso-{connection.public_id}/metadata/" in body


def test_our_metadata_is_served_for_the_connection(company: Company, idp: FakeSamlIdp):
    connection = saml_connection(company, idp)
    response = _browser().get(f"/accounts/saml/sso-{connection.public_id}/metadata/")
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        f'entityID="http://testserver/accounts/saml/sso-{connection.public_id}/metadata/"' in body
    )


def test_a_disabled_connection_has_no_saml_urls(company: Company, idp: FakeSamlIdp):
    connection = saml_connection(company, idp, enabled=False)
    for tail in ("metadata/", "login/"):
        response = _browser().get(f"/accounts/saml/sso-{connection.public_id}/{tail}")
        assert response.status_code == 404, tail
    # allauth's ACS only parks the post and moves on; where it is read, nothing answers.
    client = _browser()
    parked = client.post(f"/accounts/saml/sso-{connection.public_id}/acs/", {"SAMLResponse": "x"})
    assert client.get(parked["Location"]).status_code == 404
