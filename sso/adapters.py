"""allauth's social accounts, per company: apps built from ``SsoConnection`` rows.

``list_apps`` answers only for one named connection (``sso-<public id>``), enabled, built
from its own company's row; with no name it answers nothing, so no list of every company's
identity providers exists anywhere. ``pre_social_login`` refuses an email outside the
connection's verified domains before allauth finds or creates any user, and grants the
membership (just in time) only in the connection's own company.
"""

from __future__ import annotations

import functools
from typing import Any

import requests
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount import app_settings
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from companies.credentials import CredentialUnreadable, secret_decrypt
from companies.models import User
from sso.models import SsoConnection, SsoKind
from sso.selectors import email_domain, sso_connection_by_public_id, sso_verified_domains
from sso.services import sso_membership_grant

PROVIDER_PREFIX = "sso-"

# Where an IdP may put the email in a SAML assertion (allauth's defaults, and the plain names
# Keycloak, Okta and Google Workspace use); the NameID when it is an email address.
SAML_ATTRIBUTE_MAPPING = {
    "uid": ["urn:oasis:names:tc:SAML:attribute:subject-id"],
    "email": [
        "email",
        "mail",
        "urn:oid:0.9.2342.19200300.100.1.3",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    ],
    "first_name": [
        "firstName",
        "givenName",
        "urn:oid:2.5.4.42",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    ],
    "last_name": [
        "lastName",
        "sn",
        "urn:oid:2.5.4.4",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    ],
}


def provider_id_for(connection: SsoConnection) -> str:
    return f"{PROVIDER_PREFIX}{connection.public_id}"


def social_app_for(connection: SsoConnection) -> SocialApp | None:
    """An unsaved allauth app for the connection; None if its secret cannot be read."""
    provider_id = provider_id_for(connection)
    common: dict[str, Any] = {
        "connection": connection.public_id,
        # The company proved it owns these domains, and its IdP vouches for its people:
        # an email there is verified, and signs in to the account that already holds it.
        "verified_email": sorted(sso_verified_domains(company=connection.company)),
        "email_authentication": True,
    }
    if connection.kind == SsoKind.OIDC:
        try:
            secret = secret_decrypt(connection.oidc_client_secret_encrypted)
        except CredentialUnreadable:
            return None
        return SocialApp(
            provider="openid_connect",
            provider_id=provider_id,
            name=connection.company.name,
            client_id=connection.oidc_client_id,
            secret=secret,
            settings={**common, "server_url": connection.oidc_issuer},
        )
    return SocialApp(
        provider="saml",
        provider_id=provider_id,
        # allauth's SAML URLs name the app by client id (/accounts/saml/<client id>/acs/).
        client_id=provider_id,
        name=connection.company.name,
        settings={
            **common,
            "idp": {
                "entity_id": connection.saml_entity_id,
                "sso_url": connection.saml_sso_url,
                "x509cert": connection.saml_x509_cert,
            },
            "attribute_mapping": SAML_ATTRIBUTE_MAPPING,
            # An unsigned response is refused by python3-saml whatever these say; an
            # assertion the IdP sends unasked (IdP-initiated) is refused: it has no state
            # of ours to tie it to this browser.
            "advanced": {
                "strict": True,
                "reject_idp_initiated_sso": True,
                # Our own URLs on a one-label host (make run's localhost) are valid too.
                "allow_single_label_domains": True,
            },
        },
    )


def connection_of(app: SocialApp | None) -> SsoConnection | None:
    public_id = (app.settings or {}).get("connection") if app is not None else None
    return sso_connection_by_public_id(public_id=public_id) if public_id else None


class _CheckedURLAdapter(requests.adapters.HTTPAdapter):
    """Refuses private and reserved addresses: the issuer URL is the company's to choose."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        from notifications.http_client import UnsafeURL, url_check

        try:
            url_check(request.url or "")
        except UnsafeURL as exc:
            raise requests.ConnectionError(str(exc), request=request) from exc
        return super().send(request, *args, **kwargs)


class SsoSocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(
        self, request: HttpRequest | None, provider: str | None = None, client_id: str | None = None
    ) -> list[SocialApp]:
        name = provider if provider and provider.startswith(PROVIDER_PREFIX) else client_id
        if not name or not name.startswith(PROVIDER_PREFIX):
            return []
        connection = sso_connection_by_public_id(public_id=name.removeprefix(PROVIDER_PREFIX))
        if connection is None:
            return []
        app = social_app_for(connection)
        if app is None or (provider and provider not in {app.provider, app.provider_id}):
            return []
        if client_id and client_id != app.client_id:
            return []
        return [app]

    def get_requests_session(self) -> requests.Session:
        session = requests.Session()
        checked = _CheckedURLAdapter()
        session.mount("http://", checked)
        session.mount("https://", checked)
        session.request = functools.partial(  # type: ignore[method-assign]
            session.request, timeout=app_settings.REQUESTS_TIMEOUT
        )
        return session

    def _refuse(self, request: HttpRequest, message: str) -> ImmediateHttpResponse:
        return ImmediateHttpResponse(
            render(request, "sso/refused.html", {"message": message}, status=403)
        )

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        connection = connection_of(sociallogin.provider.app)
        if connection is None:
            raise self._refuse(request, _("Single sign-on is not set up for this company."))
        email = (sociallogin.user.email if sociallogin.user else "") or ""
        if not email and sociallogin.email_addresses:
            email = sociallogin.email_addresses[0].email
        if not email:
            raise self._refuse(request, _("Your identity provider did not send an email address."))
        if email_domain(email) not in sso_verified_domains(company=connection.company):
            raise self._refuse(
                request,
                _(
                    "%(email)s is not in a verified domain of %(company)s, so it cannot sign in "
                    "through its identity provider."
                )
                % {"email": email, "company": connection.company.name},
            )
        sociallogin.state.setdefault(
            "next", reverse("companies:overview", kwargs={"company_slug": connection.company.slug})
        )
        if sociallogin.is_existing:
            sso_membership_grant(connection=connection, user=sociallogin.user)

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> User:
        user: User = super().save_user(request, sociallogin, form=form)
        connection = connection_of(sociallogin.provider.app)
        assert connection is not None  # pre_social_login refused the login otherwise
        sso_membership_grant(connection=connection, user=user)
        return user
