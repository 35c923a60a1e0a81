"""Accounts through the app's own pages: sign-up (user + company), email verification, login,
logout, password reset and change, switching companies, the Russian interface."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from companies.models import Company, Membership, Role, User
from conftest import PASSWORD, add_member, logged_in, make_company, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-secret-42"


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "email": "new.owner@shop.test",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "company_name": "Kofe Market",
        "industry": "retail",
        "time_zone": "Asia/Almaty",
    }
    data.update(overrides)
    return data


def link_in(message: mail.EmailMessage, path_prefix: str) -> str:
    """The path of the first link under ``path_prefix`` in a message's text body."""
    found = re.search(r"https?://[^/\s]+(" + re.escape(path_prefix) + r"\S+)", str(message.body))
    assert found, f"no {path_prefix} link in: {message.body}"
    return found.group(1)


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- Sign-up and verification -----------------------------------------------------------------


def test_signup_verify_and_land_on_the_new_company(client: Client, mailoutbox: list[Any]) -> None:
    response = client.post(reverse("account_signup"), signup_data())

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="new.owner@shop.test")
    membership = Membership.objects.for_user(user).get()
    company = membership.company
    assert membership.role == Role.OWNER
    assert (company.name, company.industry, company.time_zone) == (
        "Kofe Market",
        "retail",
        "Asia/Almaty",
    )
    assert not EmailAddress.objects.get(user=user).verified
    assert not is_logged_in(client), "mandatory verification: no session before the link"

    sent = client.get(response["Location"])
    assert "Check your inbox" in sent.content.decode()

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new.owner@shop.test"]
    assert message.subject == "Confirm your email to finish signing up"
    html = message.alternatives[0][0]
    confirm_path = link_in(message, "/accounts/confirm-email/")
    assert confirm_path in html

    # A GET never confirms (mail scanners open links); it shows a button.
    page = client.get(confirm_path)
    assert page.status_code == 200
    assert "Confirm and continue" in page.content.decode()
    assert not EmailAddress.objects.get(user=user).verified

    confirmed = client.post(confirm_path)
    assert EmailAddress.objects.get(user=user).verified
    assert is_logged_in(client)
    landing = client.get(confirmed["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == reverse(
        "companies:overview", kwargs={"company_slug": company.slug}
    )
    assert landing.context["company"] == company
    assert "Kofe Market" in landing.content.decode()


def test_signup_remembers_the_interface_language(client: Client) -> None:
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    client.post(reverse("account_signup"), signup_data())
    assert User.objects.get(email="new.owner@shop.test").language == "ru"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password2": "something-else-entirely-7"}, "password2"),
        ({"password1": "12345678", "password2": "12345678"}, "password1"),
        ({"password1": "short", "password2": "short"}, "password1"),
        ({"company_name": ""}, "company_name"),
        ({"company_name": "   "}, "company_name"),
        ({"company_name": "x" * 121}, "company_name"),
        ({"industry": "astrology"}, "industry"),
        ({"industry": ""}, "industry"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ],
)
def test_signup_bad_input_shows_field_errors_and_creates_nothing(
    client: Client, mailoutbox: list[Any], overrides: dict[str, str], field: str
) -> None:
    response = client.post(reverse("account_signup"), signup_data(**overrides))

    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    body = response.content.decode()
    assert 'class="field has-error' in body
    assert str(form.errors[field][0]) in body.replace("&#x27;", "'")
    assert not User.objects.exists()
    assert not Company.objects.exists()
    assert mailoutbox == []


def test_signup_with_a_taken_email_creates_nothing_and_tells_only_the_owner(
    client: Client, mailoutbox: list[Any]
) -> None:
    """Enumeration prevention (allauth's default): the page looks like a normal sign-up, but no
    second account or company appears and the address's owner gets a "you already have an
    account" email instead of a confirmation link."""
    existing = make_user("taken@shop.test")

    response = client.post(reverse("account_signup"), signup_data(email="Taken@Shop.test"))

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert list(User.objects.values_list("pk", flat=True)) == [existing.pk]
    assert not Company.objects.exists()
    assert not Membership.objects.for_user(existing).exists()
    assert [m.subject for m in mailoutbox] == ["You already have an nps_saas account"]
    assert mailoutbox[0].to == ["taken@shop.test"]
    assert "/accounts/password/reset/" in mailoutbox[0].body


def test_expired_or_wrong_confirmation_key_says_so(client: Client) -> None:
    response = client.get(reverse("account_confirm_email", kwargs={"key": "nope"}))
    assert response.status_code == 200
    assert "This link has expired" in response.content.decode()


# --- Login and logout -------------------------------------------------------------------------


def test_login_lands_on_the_users_company(client: Client) -> None:
    company = make_company("Acme Coffee", "owner@acme.test")

    response = client.post(
        reverse("account_login"), {"login": "owner@acme.test", "password": PASSWORD}
    )

    assert response.status_code == 302
    landing = client.get(response["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == reverse(
        "companies:overview", kwargs={"company_slug": company.slug}
    )


def test_login_with_a_wrong_password_is_a_form_error(client: Client) -> None:
    make_user("owner@acme.test")

    response = client.post(
        reverse("account_login"), {"login": "owner@acme.test", "password": "wrong-password-1"}
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert 'class="alert error"' in response.content.decode()
    assert not is_logged_in(client)


def test_login_with_an_unverified_address_asks_for_verification(
    client: Client, mailoutbox: list[Any]
) -> None:
    client.post(reverse("account_signup"), signup_data())
    mailoutbox.clear()

    response = client.post(
        reverse("account_login"), {"login": "new.owner@shop.test", "password": PASSWORD}
    )

    assert response["Location"] == reverse("account_email_verification_sent")
    assert not is_logged_in(client)
    assert len(mailoutbox) == 1, "a fresh confirmation link is sent"


def test_logout(client: Client) -> None:
    user = make_user("owner@acme.test")
    client.force_login(user)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert not is_logged_in(client)
    assert client.get(reverse("home"))["Location"].startswith(reverse("account_login"))


def test_logout_page_asks_first(client: Client) -> None:
    client.force_login(make_user("owner@acme.test"))
    response = client.get(reverse("account_logout"))
    assert response.status_code == 200
    assert "Log out?" in response.content.decode()
    assert is_logged_in(client), "a GET must not log out"


# --- Passwords --------------------------------------------------------------------------------


def test_password_reset_full_flow(client: Client, mailoutbox: list[Any]) -> None:
    make_company("Acme Coffee", "owner@acme.test")

    response = client.post(reverse("account_reset_password"), {"email": "owner@acme.test"})
    assert response["Location"] == reverse("account_reset_password_done")
    assert "Check your inbox" in client.get(response["Location"]).content.decode()

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.subject == "Reset your nps_saas password"
    assert message.to == ["owner@acme.test"]
    reset_path = link_in(message, "/accounts/password/reset/key/")

    # allauth moves the key from the URL into the session, then shows the form.
    form_page = client.get(reset_path, follow=True)
    assert form_page.status_code == 200
    assert "Choose a new password" in form_page.content.decode()
    set_path = form_page.redirect_chain[-1][0] if form_page.redirect_chain else reset_path

    mismatch = client.post(set_path, {"password1": NEW_PASSWORD, "password2": "nope-nope-123"})
    assert mismatch.status_code == 200
    assert "password2" in mismatch.context["form"].errors

    done = client.post(set_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done["Location"] == reverse("account_reset_password_from_key_done")
    assert "Password changed" in client.get(done["Location"]).content.decode()

    fresh = Client()
    assert (
        fresh.post(reverse("account_login"), {"login": "owner@acme.test", "password": PASSWORD})
    ).status_code == 200, "the old password no longer works"
    assert (
        fresh.post(
            reverse("account_login"), {"login": "owner@acme.test", "password": NEW_PASSWORD}
        ).status_code
        == 302
    )

    # The link works once.
    reused = Client().get(reset_path, follow=True)
    assert "This link has expired" in reused.content.decode()


def test_password_reset_for_an_unknown_address_reveals_nothing(
    client: Client, mailoutbox: list[Any]
) -> None:
    response = client.post(reverse("account_reset_password"), {"email": "nobody@acme.test"})
    assert response["Location"] == reverse("account_reset_password_done")
    assert [m.subject for m in mailoutbox] == ["Password reset requested"]


def test_password_reset_rejects_a_malformed_email(client: Client) -> None:
    response = client.post(reverse("account_reset_password"), {"email": "nope"})
    assert response.status_code == 200
    assert "email" in response.context["form"].errors


def test_password_change(client: Client) -> None:
    user = make_user("owner@acme.test")
    client.force_login(user)

    wrong = client.post(
        reverse("account_change_password"),
        {"oldpassword": "not-it-at-all", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    assert "oldpassword" in wrong.context["form"].errors

    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


# --- Several companies ------------------------------------------------------------------------


def test_a_member_of_two_companies_chooses_then_switches() -> None:
    acme = make_company("Acme Coffee", "owner@acme.test")
    globex = make_company("Globex Tea", "owner@globex.test")
    stranger = make_company("Initech Juice", "owner@initech.test")
    user = add_member(acme, "both@people.test", Role.MANAGER)
    Membership.objects.create(company=globex, user=user, role=Role.VIEWER)
    client = logged_in(user)

    chooser = client.get(reverse("home"))
    assert chooser.status_code == 200
    body = chooser.content.decode()
    assert "Acme Coffee" in body
    assert "Globex Tea" in body
    assert "Initech Juice" not in body

    acme_url = reverse("companies:overview", kwargs={"company_slug": acme.slug})
    globex_url = reverse("companies:overview", kwargs={"company_slug": globex.slug})
    page = client.get(globex_url)
    assert page.context["company"] == globex
    switcher = page.content.decode()
    assert f'href="{acme_url}"' in switcher, "the switcher links to the other company"
    assert f'href="{globex_url}" aria-current="true"' in switcher
    assert stranger.slug not in switcher

    # The last company used is where "home" goes next time.
    assert client.get(reverse("home"))["Location"] == globex_url
    client.get(acme_url)
    assert client.get(reverse("home"))["Location"] == acme_url


def test_home_with_one_company_goes_straight_there() -> None:
    company = make_company("Acme Coffee", "owner@acme.test")
    client = logged_in(User.objects.get(email="owner@acme.test"))
    assert client.get(reverse("home"))["Location"] == reverse(
        "companies:overview", kwargs={"company_slug": company.slug}
    )


def test_home_without_a_company_explains_what_to_do() -> None:
    client = logged_in(make_user("lonely@people.test"))
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "No company yet" in response.content.decode()


# --- The pages use the app's shell, in English and Russian ------------------------------------


@pytest.mark.parametrize(
    "name", ["account_login", "account_signup", "account_reset_password", "account_email"]
)
def test_account_pages_use_the_app_layout(client: Client, name: str) -> None:
    if name == "account_email":
        client.force_login(make_user("owner@acme.test"))
    response = client.get(reverse(name))
    assert response.status_code == 200
    body = response.content.decode()
    assert "css/app.css" in body
    assert 'class="langswitch"' in body
    assert "<strong>Menu:</strong>" not in body, "allauth's bare layout leaked through"


def test_russian_interface(client: Client) -> None:
    response = client.post(
        reverse("set_language"), {"language": "ru", "next": reverse("account_login")}
    )
    assert response["Location"] == reverse("account_login")

    page = client.get(reverse("account_login")).content.decode()
    assert '<html lang="ru">' in page
    assert "Войти" in page
    assert "Log in" not in page
    client.cookies["nps_returning"] = "1"
    page = client.get(reverse("account_login")).content.decode()
    assert "С возвращением" in page
    assert "Welcome back" not in page

    signup = client.get(reverse("account_signup")).content.decode()
    assert "Создайте аккаунт" in signup
    assert "Название компании" in signup
    assert "Розничная торговля" in signup, "industry names are translated too"


def test_russian_mail(client: Client, mailoutbox: list[Any]) -> None:
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    client.post(reverse("account_signup"), signup_data())
    assert mailoutbox[0].subject == "Подтвердите адрес, чтобы завершить регистрацию"


def test_russian_company_pages_use_russian_plurals() -> None:
    company = make_company("Acme Coffee", "owner@acme.test")
    client = logged_in(User.objects.get(email="owner@acme.test"))
    client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    for extra in range(4):
        add_member(company, f"m{extra}@acme.test", Role.VIEWER)

    page = client.get(reverse("companies:overview", kwargs={"company_slug": company.slug}))

    body = page.content.decode()
    assert "5 участников" in body
    assert "Настройки компании" in body


def test_switching_language_is_remembered_on_the_account() -> None:
    user = make_user("lang@example.test")
    client = logged_in(user)
    response = client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.language == "ru"
    # An unknown language changes nothing.
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    user.refresh_from_db()
    assert user.language == "ru"


def test_login_switches_to_the_accounts_language(client: Client) -> None:
    user = make_user("ru@example.test")
    user.language = "ru"
    user.save()
    response = client.post(
        reverse("account_login"), {"login": "ru@example.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "ru"
    page = client.get(reverse("account_change_password")).content.decode()
    assert '<html lang="ru">' in page


def test_login_page_greets_back_only_a_browser_that_logged_in_before(client: Client) -> None:
    first = client.get(reverse("account_login")).content.decode()
    assert "Welcome back" not in first
    assert '<h1 class="page-title">Log in</h1>' in first
    make_user("returning@acme.test")
    client.post(reverse("account_login"), {"login": "returning@acme.test", "password": PASSWORD})
    client.post(reverse("account_logout"))
    again = client.get(reverse("account_login")).content.decode()
    assert '<h1 class="page-title">Welcome back</h1>' in again
