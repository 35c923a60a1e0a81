"""Fixtures of the single sign-on tests: a fake OIDC provider and companies set up for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from companies.models import Company
from sso.models import SsoConnection, SsoDomain
from sso.services import sso_connection_save
from sso.tests.fake_oidc import FakeOidcProvider
from tests.waits import WAIT_SECONDS


@pytest.fixture
def idp(settings: object) -> Iterator[FakeOidcProvider]:
    # The fake IdP listens on loopback, which company-configured URLs may not reach in
    # production (sso.adapters._CheckedURLAdapter).
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # type: ignore[attr-defined]
    provider = FakeOidcProvider().start()
    yield provider
    provider.stop()


def verified_domain(company: Company, domain: str) -> SsoDomain:
    return SsoDomain.objects.create(company=company, domain=domain, verified_at=timezone.now())


def oidc_connection(company: Company, idp: FakeOidcProvider, **options: object) -> SsoConnection:
    values: dict[str, object] = {
        "kind": "oidc",
        "enabled": True,
        "default_role": "agent",
        "sso_required": False,
        "oidc_issuer": idp.issuer,
        "oidc_client_id": idp.client_id,
        "oidc_client_secret": idp.client_secret,
    }
    values.update(options)
    return sso_connection_save(company=company, **values)  # type: ignore[arg-type]


def idp_url(response: Any) -> str:
    """Where "Sign in with SSO" sends the browser: the page's refresh (and its link)."""
    assert response.status_code == 200, response.content.decode()[:2000]
    refresh = response["Refresh"]
    assert refresh.startswith("0;url=")
    url = refresh.removeprefix("0;url=")
    assert f'href="{escape(url)}"' in response.content.decode()
    return str(url)


def oidc_sign_in(client: Client, identifier: str, *, next_url: str = "") -> Any:
    """Start at "Sign in with SSO", let the fake IdP authorize, come back to the callback.

    Returns the IdP's authorize answer's redirect followed into the app: the test client's
    response to the callback.
    """
    data = {"identifier": identifier}
    if next_url:
        data["next"] = next_url
    start = client.post("/accounts/sso/", data)
    authorize = requests.get(idp_url(start), allow_redirects=False, timeout=WAIT_SECONDS)
    assert authorize.status_code == 302, authorize.text
    back = urlparse(authorize.headers["Location"])
    return client.get(f"{back.path}?{back.query}")
