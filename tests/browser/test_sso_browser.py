"""Single sign-on in a real browser: "Sign in with SSO" on the login page, the company's
OpenID Connect provider (a fake one on loopback), back in the company as a new member."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from companies.models import Company, Membership, Role, User
from conftest import make_company
from sso.tests.conftest import oidc_connection, verified_domain
from sso.tests.fake_oidc import FakeOidcProvider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def idp(settings) -> Iterator[FakeOidcProvider]:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    provider = FakeOidcProvider().start()
    yield provider
    provider.stop()


def test_sign_in_with_oidc_and_join_the_company(chromium_page: Page, idp: FakeOidcProvider):
    company: Company = make_company("Acme Coffee", "owner@acme.test")
    oidc_connection(company, idp, default_role=Role.AGENT)
    verified_domain(company, "acme.test")
    idp.claims = {"sub": "jane-1", "email": "jane@acme.test", "email_verified": True}
    page = chromium_page

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with SSO").click()
    page.get_by_label("Work email or company ID").fill("jane@acme.test")
    page.get_by_role("button", name="Continue").click()

    # The IdP signs Jane in at once and sends the browser back: she lands in the company.
    page.wait_for_url(f"**/c/{company.slug}/")
    expect(page.get_by_text("Acme Coffee").first).to_be_visible()
    user = User.objects.get(email="jane@acme.test")
    assert Membership.objects.for_company(company).get(user=user).role == Role.AGENT
