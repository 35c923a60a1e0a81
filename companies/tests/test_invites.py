"""Teammate invitations end to end: the email, the accept page, and the role that follows."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from allauth.account.models import EmailAddress
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from companies.models import Membership, Role, TeamInvite, User
from companies.services import team_invite_create, team_invite_revoke
from conftest import PASSWORD, Persona, logged_in, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "plum-orchard-lantern-42"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def invite_by_web(
    inviter: Persona, email: str, role: str, mailoutbox, capture_on_commit
) -> tuple[str, EmailMultiAlternatives]:
    """Invite through the team page; return the accept link's path and the email sent."""
    team = reverse("companies:team", kwargs={"company_slug": inviter.company.slug})
    with capture_on_commit(execute=True):
        response = inviter.client.post(team, {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:500]
    message = mailoutbox[-1]
    assert isinstance(message, EmailMultiAlternatives)
    match = re.search(r"https?://\S+/invites/[\w-]+/", str(message.body))
    assert match, message.body
    return urlparse(match.group(0)).path, message


def invite_path(company, email: str = "new@example.com", role: str = Role.VIEWER) -> str:
    issued = team_invite_create(company=company, email=email, role=role, invited_by=None)
    return reverse("invite-accept", kwargs={"token": issued.token})


def membership(company, email: str) -> Membership | None:
    return Membership.objects.for_company(company).filter(user__email=email).first()


def role_of(company, email: str) -> str | None:
    found = membership(company, email)
    return found.role if found else None


def signup_data(**overrides: str) -> dict[str, str]:
    data = {
        "first_name": "Dana",
        "last_name": "Scully",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    data.update(overrides)
    return data


# --- The email ----------------------------------------------------------------------------------


def test_invite_email_names_inviter_company_role_and_expiry(
    owner, company, mailoutbox, django_capture_on_commit_callbacks
):
    owner.user.first_name, owner.user.last_name = "Olga", "Owner"
    owner.user.save()
    path, message = invite_by_web(
        owner, "new@example.com", Role.MANAGER, mailoutbox, django_capture_on_commit_callbacks
    )
    invite = TeamInvite.objects.for_company(company).get()
    assert message.to == ["new@example.com"]
    assert message.reply_to == [owner.user.email]
    assert company.name in message.subject
    assert "\n" not in message.subject
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    expiry = f"{invite.expires_at:%Y}"
    for part in (str(message.body), str(html)):
        assert "Olga Owner" in part
        assert company.name in part
        assert "Manager" in part
        assert path in part
        assert expiry in part
    # Only a hash of the token is stored: the link's token is nowhere in the database row.
    token = path.rstrip("/").rsplit("/", 1)[-1]
    assert token not in (invite.token_hash, invite.public_id)
    assert "&amp;" not in message.body  # the text part is not HTML-escaped


def test_invite_email_uses_the_inviters_language(
    owner, mailoutbox, django_capture_on_commit_callbacks
):
    owner.user.language = "ru"
    owner.user.save()
    _path, message = invite_by_web(
        owner, "new@example.com", Role.VIEWER, mailoutbox, django_capture_on_commit_callbacks
    )
    # The Russian date format (nps_saas/formats/ru: month name in the genitive): rendered in "ru".
    months = "января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря"
    assert re.search(rf"\d{{1,2}} ({months}) \d{{4}}", str(message.body))
    assert "/invites/" in str(message.body)


# --- Accepting as a new user (anonymous) --------------------------------------------------------


def test_new_user_accepts_and_the_role_applies(
    owner, company, mailoutbox, django_capture_on_commit_callbacks
):
    path, _message = invite_by_web(
        owner, "viewer.new@example.com", Role.VIEWER, mailoutbox, django_capture_on_commit_callbacks
    )
    client = Client()
    page = client.get(path)
    assert page.status_code == 200
    body = page.content.decode()
    assert company.name in body
    assert "viewer.new@example.com" in body
    assert 'name="password1"' in body
    login_link = reverse("account_login") + "?next=" + path.replace("/", "%2F")
    assert login_link in body

    response = client.post(path, signup_data())
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "companies:overview", kwargs={"company_slug": company.slug}
    )
    user = User.objects.get(email="viewer.new@example.com")
    assert user.first_name == "Dana"
    assert user.check_password(NEW_PASSWORD)
    assert EmailAddress.objects.filter(user=user, email=user.email, verified=True).exists()
    assert role_of(company, user.email) == Role.VIEWER
    invite = TeamInvite.objects.for_company(company).get()
    assert invite.accepted_by == user
    assert invite.accepted_at is not None

    # Logged in now, with a welcome message, and the role applies.
    overview = client.get(response["Location"])
    assert overview.status_code == 200
    assert "Welcome to" in overview.content.decode()
    api_keys = reverse("companies:api_keys", kwargs={"company_slug": company.slug})
    assert client.get(api_keys).status_code == 403


def test_invited_admin_gets_admin_pages(
    owner, company, mailoutbox, django_capture_on_commit_callbacks
):
    path, _message = invite_by_web(
        owner, "admin.new@example.com", Role.ADMIN, mailoutbox, django_capture_on_commit_callbacks
    )
    client = Client()
    assert client.post(path, signup_data()).status_code == 302
    api_keys = reverse("companies:api_keys", kwargs={"company_slug": company.slug})
    assert client.get(api_keys).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"password2": "something-else-entirely-7"}, "password2", "differ"),
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"password1": "password123", "password2": "password123"}, "password1", "too common"),
        ({"password1": "12345678901", "password2": "12345678901"}, "password1", "numeric"),
        ({"first_name": ""}, "first_name", "required"),
        ({"last_name": ""}, "last_name", "required"),
    ],
)
def test_bad_sign_up_input_is_a_form_error(company, overrides, field, message):
    path = invite_path(company, "new@example.com", Role.AGENT)
    response = Client().post(path, signup_data(**overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in error for error in errors[field]), errors
    assert not User.objects.filter(email="new@example.com").exists()
    assert TeamInvite.objects.for_company(company).get().is_pending


def test_email_cannot_be_changed_on_sign_up(company):
    path = invite_path(company, "new@example.com", Role.AGENT)
    response = Client().post(path, {**signup_data(), "email": "attacker@example.com"})
    assert response.status_code == 302
    assert not User.objects.filter(email="attacker@example.com").exists()
    assert role_of(company, "new@example.com") == Role.AGENT


def test_anonymous_with_an_existing_account_is_sent_to_log_in(company):
    make_user("existing@example.com")
    path = invite_path(company, "existing@example.com")
    page = Client().get(path)
    assert page.status_code == 200
    body = page.content.decode()
    assert "already an account" in body
    assert 'name="password1"' not in body
    response = Client().post(path, signup_data())
    assert response.status_code == 400
    assert membership(company, "existing@example.com") is None
    existing = User.objects.get(email="existing@example.com")
    assert existing.check_password(PASSWORD)  # untouched


def test_log_in_link_comes_back_to_the_invite(company):
    make_user("existing@example.com")
    path = invite_path(company, "existing@example.com", Role.MANAGER)
    client = Client()
    login = client.post(
        reverse("account_login") + "?next=" + path,
        {"login": "existing@example.com", "password": PASSWORD},
    )
    assert login.status_code == 302
    assert login["Location"] == path
    assert client.post(path).status_code == 302
    assert role_of(company, "existing@example.com") == Role.MANAGER


# --- Accepting as a logged-in user --------------------------------------------------------------


def test_logged_in_user_accepts_with_a_post(company):
    user = make_user("existing@example.com")
    client = logged_in(user)
    path = invite_path(company, "existing@example.com", Role.AGENT)
    page = client.get(path)
    assert page.status_code == 200
    body = page.content.decode()
    assert company.name in body
    assert "Agent" in body
    assert "Accept and join" in body
    assert membership(company, user.email) is None  # a GET changes nothing

    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "companies:overview", kwargs={"company_slug": company.slug}
    )
    assert role_of(company, user.email) == Role.AGENT
    # The role applies: an agent is below admin.
    api_keys = reverse("companies:api_keys", kwargs={"company_slug": company.slug})
    assert client.get(api_keys).status_code == 403
    assert client.get(response["Location"]).status_code == 200


def test_an_existing_member_keeps_the_higher_role(personas, company):
    """An invitation that went out before the person joined another way never demotes them."""
    manager = personas[Role.MANAGER]
    issued = team_invite_create(
        company=company, email="later@example.com", role=Role.VIEWER, invited_by=None
    )
    # team_invite_create refuses members, so point the pending invite at one afterwards.
    TeamInvite.objects.for_company(company).filter(pk=issued.invite.pk).update(
        email=manager.user.email
    )
    path = reverse("invite-accept", kwargs={"token": issued.token})
    assert manager.client.post(path).status_code == 302
    assert role_of(company, manager.user.email) == Role.MANAGER
    assert TeamInvite.objects.for_company(company).get().accepted_by == manager.user


def test_a_get_never_accepts(company):
    """Mail scanners open links: neither a logged-in nor an anonymous GET joins anyone."""
    user = make_user("existing@example.com")
    path = invite_path(company, "existing@example.com")
    for client in (logged_in(user), Client()):
        for _ in range(2):
            assert client.get(path).status_code == 200
    assert membership(company, "existing@example.com") is None
    assert TeamInvite.objects.for_company(company).get().is_pending


def test_wrong_user_cannot_accept(company):
    path = invite_path(company, "invited@example.com", Role.ADMIN)
    intruder = logged_in(make_user("intruder@example.com"))
    page = intruder.get(path)
    assert page.status_code == 403
    body = page.content.decode()
    assert "invited@example.com" in body
    assert "intruder@example.com" in body
    assert "Accept and join" not in body
    assert intruder.post(path).status_code == 403
    assert membership(company, "intruder@example.com") is None
    assert TeamInvite.objects.for_company(company).get().is_pending
    # "Log out and continue" comes back to the invitation, now as a visitor.
    logout = intruder.post(reverse("account_logout"), {"next": path})
    assert logout.status_code == 302
    assert logout["Location"] == path
    assert 'name="password1"' in intruder.get(path).content.decode()


def test_email_match_ignores_case(company):
    user = make_user("mixed@example.com")
    path = invite_path(company, "Mixed@Example.com", Role.VIEWER)
    assert logged_in(user).post(path).status_code == 302
    assert role_of(company, "mixed@example.com") == Role.VIEWER


# --- Links that no longer work ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_token_is_404(db, method):
    path = reverse("invite-accept", kwargs={"token": "no-such-token-at-all"})
    response = getattr(Client(), method)(path, signup_data())
    assert response.status_code == 404
    assert "Invitation not found" in response.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_expired_invite_is_410(company, method):
    path = invite_path(company, "late@example.com")
    TeamInvite.objects.for_company(company).update(expires_at=timezone.now() - timedelta(hours=1))
    response = getattr(Client(), method)(path, signup_data())
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not User.objects.filter(email="late@example.com").exists()


def test_revoked_invite_is_410(company):
    path = invite_path(company, "existing@example.com")
    team_invite_revoke(company=company, invite=TeamInvite.objects.for_company(company).get())
    client = logged_in(make_user("existing@example.com"))
    for response in (client.get(path), client.post(path)):
        assert response.status_code == 410
        assert "withdrawn" in response.content.decode()
    assert membership(company, "existing@example.com") is None


def test_used_invite_is_410(company):
    path = invite_path(company, "new@example.com", Role.MANAGER)
    first = Client()
    assert first.post(path, signup_data()).status_code == 302
    again = first.post(path)  # the same person, now logged in
    assert again.status_code == 410
    assert "already used" in again.content.decode()
    assert Client().get(path).status_code == 410
    assert (
        Membership.objects.for_company(company).filter(user__email="new@example.com").count() == 1
    )


def test_revoked_between_get_and_post(company):
    user = make_user("existing@example.com")
    client = logged_in(user)
    path = invite_path(company, "existing@example.com")
    assert client.get(path).status_code == 200
    team_invite_revoke(company=company, invite=TeamInvite.objects.for_company(company).get())
    assert client.post(path).status_code == 410
    assert membership(company, user.email) is None
