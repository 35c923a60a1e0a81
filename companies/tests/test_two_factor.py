"""Two-factor sign-in (allauth.mfa) through the app's pages, and a company requiring it.

TOTP codes are computed with allauth's own functions from the secret the activation page
shows, as an authenticator app would; nothing in allauth's checking is replaced.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from companies.models import Company, Membership, Role, User
from companies.services import company_two_factor_requirement_set
from conftest import PASSWORD, Persona, add_member, make_company

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _codes_of_neighbouring_periods(settings: Any) -> None:
    """Accept the code of the 30-second period before or after the current one, so that a
    code computed here and checked a few seconds later on a busy machine does not fall into
    the next period (production keeps allauth's default of the current period only)."""
    settings.MFA_TOTP_TOLERANCE = 1


MFA_AUTHENTICATE = "/accounts/2fa/authenticate/"


def totp_code(secret: str, *, periods_ahead: int = 0) -> str:
    counter = int(time.time()) // 30 + periods_ahead
    return format_hotp_value(hotp_value(secret, counter))


def password_login(client: Client, email: str) -> str:
    """Post the login form; the address it sends the browser on to."""
    response = client.post(LOGIN, {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    return str(response["Location"])


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def get_confirmed(client: Client, url: str) -> _MonkeyPatchedWSGIResponse:
    """GET a page that changes or shows sign-in secrets: allauth asks for the password again
    first, even right after logging in."""
    page = client.get(url)
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("account_reauthenticate"))
    confirmed = client.post(page["Location"], {"password": PASSWORD})
    assert confirmed["Location"] == url
    return client.get(url)


def activate_totp(client: Client) -> str:
    """Activate an authenticator app from the account pages; returns its secret."""
    page = get_confirmed(client, reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    # The QR code is made here (no third-party service) and shown inline.
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    return str(secret)


def totp_user(email: str = "two.factor@acme.test") -> tuple[User, str]:
    user = add_member(make_company("Two Factor Ltd", f"boss-{email}"), email, Role.MANAGER)
    client = Client()
    password_login(client, email)
    return user, activate_totp(client)


def test_totp_activation_then_sign_in_asks_for_a_code() -> None:
    user, secret = totp_user()
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    # Activation also made recovery codes.
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).exists()

    client = Client()
    assert password_login(client, user.email) == MFA_AUTHENTICATE
    assert not is_logged_in(client)

    response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})

    assert response.status_code == 302
    assert is_logged_in(client)


def test_wrong_code_is_refused_with_a_message() -> None:
    user, secret = totp_user()
    client = Client()
    password_login(client, user.email)

    wrong = totp_code(secret, periods_ahead=10)
    response = client.post(MFA_AUTHENTICATE, {"code": wrong})

    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not is_logged_in(client)


def test_a_code_signs_in_once() -> None:
    """A code seen by someone looking over a shoulder cannot be replayed in its 30 seconds."""
    user, secret = totp_user()
    code = totp_code(secret)
    first = Client()
    password_login(first, user.email)
    assert first.post(MFA_AUTHENTICATE, {"code": code}).status_code == 302

    second = Client()
    password_login(second, user.email)
    response = second.post(MFA_AUTHENTICATE, {"code": code})

    assert response.status_code == 200
    assert not is_logged_in(second)


def test_recovery_code_signs_in_once() -> None:
    user, _secret = totp_user()
    codes = RecoveryCodes(
        Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    ).get_unused_codes()
    first = Client()
    password_login(first, user.email)
    assert first.post(MFA_AUTHENTICATE, {"code": codes[0]}).status_code == 302
    assert is_logged_in(first)

    again = Client()
    password_login(again, user.email)
    response = again.post(MFA_AUTHENTICATE, {"code": codes[0]})
    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert not is_logged_in(again)
    # Another of the codes still works.
    assert again.post(MFA_AUTHENTICATE, {"code": codes[1]}).status_code == 302


def test_recovery_codes_view_download_and_regenerate() -> None:
    user, _secret = totp_user()
    client = Client()
    password_login(client, user.email)
    # Signing in again needs the second factor; a recovery code will do.
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    old_codes = RecoveryCodes(authenticator).get_unused_codes()
    client.post(MFA_AUTHENTICATE, {"code": old_codes[0]})

    page = get_confirmed(client, reverse("mfa_view_recovery_codes")).content.decode()
    assert old_codes[1] in page
    download = client.get(reverse("mfa_download_recovery_codes"))
    assert download["Content-Disposition"].startswith("attachment")
    assert old_codes[1] in download.content.decode()

    assert client.post(reverse("mfa_generate_recovery_codes")).status_code == 302
    new_codes = RecoveryCodes(
        Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    ).get_unused_codes()
    assert not set(new_codes) & set(old_codes)


def test_account_pages_are_the_apps_and_linked_from_the_user_menu(owner: Persona) -> None:
    overview = owner.client.get(f"/c/{owner.company.slug}/").content.decode()
    assert f'href="{reverse("mfa_index")}"' in overview

    page = owner.client.get(reverse("mfa_index")).content.decode()
    assert "Two-Factor Authentication" in page
    assert 'class="card manage-card"' in page  # the app's shell, not allauth's bare page


def test_the_account_page_speaks_russian(owner: Persona) -> None:
    owner.client.cookies["django_language"] = "ru"
    page = owner.client.get(reverse("mfa_index")).content.decode()
    assert "Двухфакторная аутентификация" in page
    assert "Authenticator App" not in page


# --- A company requiring two-factor sign-in ---------------------------------------------------


def overview_url(company: Company) -> str:
    return reverse("companies:overview", kwargs={"company_slug": company.slug})


def security_url(company: Company) -> str:
    return reverse("companies:security-settings", kwargs={"company_slug": company.slug})


def give_totp(user: User) -> None:
    TOTP.activate(user, generate_totp_secret())


def test_required_two_factor_sends_a_member_to_set_it_up(
    personas: dict[str, Persona], company: Company, other_company: Company
) -> None:
    manager = personas[Role.MANAGER]
    # The same person also belongs to a company that does not require it.
    Membership.objects.create(company=other_company, user=manager.user, role=Role.VIEWER)
    company.require_mfa = True
    company.save()

    response = manager.client.get(overview_url(company), follow=True)
    assert response.redirect_chain[0] == (reverse("mfa_index"), 302)
    assert "Acme Coffee requires two-factor sign-in." in response.content.decode()
    dashboard = reverse("dashboards:dashboard", kwargs={"company_slug": company.slug})
    assert manager.client.get(dashboard)["Location"] == reverse("mfa_index")

    assert manager.client.get(overview_url(other_company)).status_code == 200

    # The account pages lead back to where the member was going.
    page = manager.client.get(reverse("mfa_index")).content.decode()
    assert f'href="{dashboard}" data-testid="mfa-return"' in page
    assert "Continue to Acme Coffee" in page

    give_totp(manager.user)
    assert manager.client.get(overview_url(company)).status_code == 200
    assert (
        'data-testid="mfa-return"' not in manager.client.get(reverse("mfa_index")).content.decode()
    )


def test_required_two_factor_leaves_outsiders_at_404_and_api_keys_alone(
    company: Company, outsider: Persona, api_owner
) -> None:
    company.require_mfa = True
    company.save()

    assert outsider.client.get(overview_url(company)).status_code == 404
    response = Client().get("/api/v1/company/", **api_owner.headers)
    assert response.status_code == 200


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_admins_require_two_factor_once_they_have_it(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    admin = personas[role]
    give_totp(admin.user)

    page = admin.client.get(security_url(company)).content.decode()
    assert 'name="require_mfa"' in page

    response = admin.client.post(security_url(company), {"require_mfa": "on"}, follow=True)
    assert "Sign-in security saved." in response.content.decode()
    company.refresh_from_db()
    assert company.require_mfa is True

    admin.client.post(security_url(company), {})
    company.refresh_from_db()
    assert company.require_mfa is False


def test_admin_without_two_factor_is_sent_to_set_it_up_first(
    personas: dict[str, Persona], company: Company
) -> None:
    admin = personas[Role.ADMIN]

    response = admin.client.post(security_url(company), {"require_mfa": "on"})

    assert response["Location"] == reverse("mfa_index")
    company.refresh_from_db()
    assert company.require_mfa is False


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_change_the_requirement(
    personas: dict[str, Persona], company: Company, role: str
) -> None:
    member = personas[role]
    give_totp(member.user)
    assert member.client.get(security_url(company)).status_code == 403
    assert member.client.post(security_url(company), {"require_mfa": "on"}).status_code == 403
    company.refresh_from_db()
    assert company.require_mfa is False


def test_outsider_cannot_see_or_change_the_requirement(company: Company, outsider: Persona) -> None:
    give_totp(outsider.user)
    assert outsider.client.get(security_url(company)).status_code == 404
    assert outsider.client.post(security_url(company), {"require_mfa": "on"}).status_code == 404
    company.refresh_from_db()
    assert company.require_mfa is False


def test_the_service_refuses_a_requirement_its_actor_could_not_meet(
    personas: dict[str, Persona], company: Company
) -> None:
    admin = personas[Role.ADMIN].user
    with pytest.raises(ValidationError) as refused:
        company_two_factor_requirement_set(company=company, required=True, actor=admin)
    assert "require_mfa" in refused.value.message_dict
    company.refresh_from_db()
    assert company.require_mfa is False

    # Turning it off needs nothing of the actor.
    Company.objects.filter(pk=company.pk).update(require_mfa=True)
    company.refresh_from_db()
    company_two_factor_requirement_set(company=company, required=False, actor=admin)
    company.refresh_from_db()
    assert company.require_mfa is False
