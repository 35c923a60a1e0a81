"""The team page: members, roles, removals, invitations (web)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from companies.models import Membership, Role, TeamInvite
from companies.services import team_invite_create
from conftest import Persona, add_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def team_url(company) -> str:
    return reverse("companies:team", kwargs={"company_slug": company.slug})


def role_url(membership: Membership) -> str:
    return reverse(
        "companies:team_member_role",
        kwargs={"company_slug": membership.company.slug, "member_id": membership.public_id},
    )


def remove_url(membership: Membership) -> str:
    return reverse(
        "companies:team_member_remove",
        kwargs={"company_slug": membership.company.slug, "member_id": membership.public_id},
    )


def revoke_url(invite: TeamInvite) -> str:
    return reverse(
        "companies:team_invite_revoke",
        kwargs={"company_slug": invite.company.slug, "invite_id": invite.public_id},
    )


def membership_of(persona: Persona) -> Membership:
    return Membership.objects.for_company(persona.company).get(user=persona.user)


def invites_of(company) -> list[TeamInvite]:
    return list(TeamInvite.objects.for_company(company))


# --- Who sees the page --------------------------------------------------------------------------


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_member_sees_the_team(personas, company, role):
    response = personas[role].client.get(team_url(company))
    assert response.status_code == 200
    body = response.content.decode()
    for persona in personas.values():
        assert persona.user.email in body
    assert "Admin" in body
    assert "Viewer" in body


def test_team_page_guards(company, outsider):
    assert outsider.client.get(team_url(company)).status_code == 404
    response = Client().get(team_url(company))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_only_admins_see_the_controls(personas, company):
    admin_page = personas[Role.ADMIN].client.get(team_url(company)).content.decode()
    manager_page = personas[Role.MANAGER].client.get(team_url(company)).content.decode()
    assert "Invite a teammate" in admin_page
    assert 'name="role"' in admin_page
    assert "Invite a teammate" not in manager_page
    # A manager only gets their own "Leave" button, no role selects.
    assert '<select name="role"' not in manager_page
    assert reverse("companies:team_leave", kwargs={"company_slug": company.slug}) in manager_page


def test_nav_links_follow_the_role(personas, company):
    api_keys = reverse("companies:api_keys", kwargs={"company_slug": company.slug})
    viewer_page = personas[Role.VIEWER].client.get(team_url(company)).content.decode()
    admin_page = personas[Role.ADMIN].client.get(team_url(company)).content.decode()
    assert team_url(company) in viewer_page
    assert api_keys not in viewer_page
    assert api_keys in admin_page


def test_pending_invites_are_listed(owner, company, other_company):
    team_invite_create(company=company, email="new@acme.test", role=Role.AGENT, invited_by=None)
    team_invite_create(
        company=other_company, email="theirs@globex.test", role=Role.AGENT, invited_by=None
    )
    body = owner.client.get(team_url(company)).content.decode()
    assert "new@acme.test" in body
    assert "theirs@globex.test" not in body


# --- Inviting -----------------------------------------------------------------------------------


def test_admin_invites_a_teammate(
    personas, company, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = personas[Role.ADMIN].client.post(
            team_url(company), {"email": "New.Person@Example.com", "role": Role.MANAGER}
        )
    assert response.status_code == 302
    invite = TeamInvite.objects.for_company(company).get()
    assert invite.email == "new.person@example.com"
    assert invite.role == Role.MANAGER
    assert invite.invited_by == personas[Role.ADMIN].user
    assert invite.is_pending
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.person@example.com"]
    follow = personas[Role.ADMIN].client.get(response["Location"]).content.decode()
    assert "Invitation sent to new.person@example.com" in follow


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_invite(personas, company, mailoutbox, role):
    response = personas[role].client.post(
        team_url(company), {"email": "new@example.com", "role": Role.VIEWER}
    )
    assert response.status_code == 403
    assert invites_of(company) == []
    assert mailoutbox == []


def test_outsider_cannot_invite(outsider, company):
    response = outsider.client.post(team_url(company), {"email": "x@example.com", "role": "viewer"})
    assert response.status_code == 404
    assert invites_of(company) == []


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email", "role": "viewer"}, "email", "valid email"),
        ({"email": "", "role": "viewer"}, "email", "required"),
        ({"email": "a@example.com", "role": "owner"}, "role", "valid choice"),
        ({"email": "a@example.com", "role": "boss"}, "role", "valid choice"),
        ({"email": "viewer@acme.test", "role": "viewer"}, "email", "already a member"),
        ({"email": "VIEWER@acme.test", "role": "admin"}, "email", "already a member"),
    ],
)
def test_bad_invites_are_form_errors(personas, company, mailoutbox, *, data, field, message):
    response = personas[Role.OWNER].client.post(team_url(company), data)
    assert response.status_code == 400
    form = response.context["invite_form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert message in response.content.decode()
    assert invites_of(company) == []
    assert mailoutbox == []


def test_a_second_pending_invite_to_the_same_address_is_refused(owner, company):
    team_invite_create(company=company, email="twice@example.com", role="viewer", invited_by=None)
    response = owner.client.post(team_url(company), {"email": "Twice@example.com", "role": "admin"})
    assert response.status_code == 400
    assert "already pending" in response.context["invite_form"].errors["email"][0]
    assert len(invites_of(company)) == 1


def test_after_revoking_the_address_can_be_invited_again(owner, company):
    first = team_invite_create(
        company=company, email="again@example.com", role="viewer", invited_by=None
    ).invite
    assert owner.client.post(revoke_url(first)).status_code == 302
    response = owner.client.post(team_url(company), {"email": "again@example.com", "role": "agent"})
    assert response.status_code == 302
    assert len(invites_of(company)) == 2


def test_an_invite_pending_in_another_company_does_not_block(owner, company, other_company):
    team_invite_create(
        company=other_company, email="shared@example.com", role="viewer", invited_by=None
    )
    response = owner.client.post(
        team_url(company), {"email": "shared@example.com", "role": "agent"}
    )
    assert response.status_code == 302
    assert [i.email for i in invites_of(company)] == ["shared@example.com"]


# --- Revoking invitations -----------------------------------------------------------------------


def test_admin_revokes_an_invite(personas, company):
    invite = team_invite_create(
        company=company, email="gone@example.com", role="viewer", invited_by=None
    ).invite
    response = personas[Role.ADMIN].client.post(revoke_url(invite))
    assert response.status_code == 302
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    body = personas[Role.ADMIN].client.get(team_url(company)).content.decode()
    assert "gone@example.com" in body  # in the flash message...
    assert revoke_url(invite) not in body  # ...but no longer listed as pending


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_revoke(personas, company, role):
    invite = team_invite_create(
        company=company, email="stay@example.com", role="viewer", invited_by=None
    ).invite
    assert personas[role].client.post(revoke_url(invite)).status_code == 403
    invite.refresh_from_db()
    assert invite.revoked_at is None


def test_revoke_is_post_only(owner, company):
    invite = team_invite_create(
        company=company, email="stay@example.com", role="viewer", invited_by=None
    ).invite
    assert owner.client.get(revoke_url(invite)).status_code == 405
    invite.refresh_from_db()
    assert invite.revoked_at is None


def test_another_companys_invite_is_not_found(outsider, company):
    invite = team_invite_create(
        company=company, email="stay@example.com", role="viewer", invited_by=None
    ).invite
    theirs = reverse(
        "companies:team_invite_revoke",
        kwargs={"company_slug": outsider.company.slug, "invite_id": invite.public_id},
    )
    assert outsider.client.post(theirs).status_code == 404
    assert outsider.client.post(revoke_url(invite)).status_code == 404
    invite.refresh_from_db()
    assert invite.revoked_at is None


# --- Changing roles -----------------------------------------------------------------------------


def test_admin_changes_a_role(personas):
    target = membership_of(personas[Role.VIEWER])
    response = personas[Role.ADMIN].client.post(role_url(target), {"role": Role.MANAGER})
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == Role.MANAGER


def test_role_change_with_htmx_swaps_the_row(personas):
    target = membership_of(personas[Role.AGENT])
    response = personas[Role.ADMIN].client.post(
        role_url(target), {"role": Role.VIEWER}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith("<tr")
    assert '<option value="viewer" selected>' in body
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_role_change_applies_at_once(personas, company):
    """A manager made viewer loses the manager-only rights on the next request."""
    manager = personas[Role.MANAGER]
    api_keys = reverse("companies:api_keys", kwargs={"company_slug": company.slug})
    assert manager.client.get(api_keys).status_code == 403
    personas[Role.OWNER].client.post(role_url(membership_of(manager)), {"role": Role.ADMIN})
    assert manager.client.get(api_keys).status_code == 200


def test_admin_cannot_make_an_owner(personas):
    target = membership_of(personas[Role.VIEWER])
    response = personas[Role.ADMIN].client.post(role_url(target), {"role": Role.OWNER})
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.VIEWER


def test_admin_cannot_demote_an_owner(personas, company):
    add_member(company, "owner2@acme.test", Role.OWNER)
    target = membership_of(personas[Role.OWNER])
    response = personas[Role.ADMIN].client.post(role_url(target), {"role": Role.VIEWER})
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.OWNER


def test_owner_makes_and_unmakes_owners(personas):
    target = membership_of(personas[Role.ADMIN])
    owner = personas[Role.OWNER]
    assert owner.client.post(role_url(target), {"role": Role.OWNER}).status_code == 302
    target.refresh_from_db()
    assert target.role == Role.OWNER
    assert owner.client.post(role_url(target), {"role": Role.ADMIN}).status_code == 302
    target.refresh_from_db()
    assert target.role == Role.ADMIN


def test_last_owner_cannot_be_demoted(owner, company):
    me = membership_of(owner)
    response = owner.client.post(role_url(me), {"role": Role.ADMIN}, follow=True)
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    me.refresh_from_db()
    assert me.role == Role.OWNER


def test_last_owner_demotion_with_htmx_shows_the_error_in_the_row(owner):
    me = membership_of(owner)
    response = owner.client.post(role_url(me), {"role": Role.VIEWER}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    me.refresh_from_db()
    assert me.role == Role.OWNER


def test_one_of_two_owners_may_step_down(owner, company):
    add_member(company, "owner2@acme.test", Role.OWNER)
    me = membership_of(owner)
    assert owner.client.post(role_url(me), {"role": Role.ADMIN}).status_code == 302
    me.refresh_from_db()
    assert me.role == Role.ADMIN


def test_unknown_role_is_refused(personas):
    target = membership_of(personas[Role.VIEWER])
    response = personas[Role.OWNER].client.post(role_url(target), {"role": "boss"}, follow=True)
    assert "Choose one of the listed roles" in response.content.decode()
    target.refresh_from_db()
    assert target.role == Role.VIEWER


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_change_roles(personas, role):
    target = membership_of(personas[Role.AGENT if role != Role.AGENT else Role.VIEWER])
    before = target.role
    assert personas[role].client.post(role_url(target), {"role": Role.ADMIN}).status_code == 403
    target.refresh_from_db()
    assert target.role == before


def test_another_companys_member_is_not_found(personas, outsider, company):
    ours = membership_of(personas[Role.VIEWER])
    theirs = reverse(
        "companies:team_member_role",
        kwargs={"company_slug": outsider.company.slug, "member_id": ours.public_id},
    )
    assert outsider.client.post(theirs, {"role": Role.ADMIN}).status_code == 404
    assert outsider.client.post(role_url(ours), {"role": Role.ADMIN}).status_code == 404
    ours.refresh_from_db()
    assert ours.role == Role.VIEWER


def test_member_urls_use_the_public_id(personas, company):
    body = personas[Role.OWNER].client.get(team_url(company)).content.decode()
    target = membership_of(personas[Role.VIEWER])
    assert role_url(target) in body
    assert f"/members/{target.pk}/" not in body


# --- Removing members and leaving -------------------------------------------------------------


def test_admin_removes_a_member(personas):
    target = membership_of(personas[Role.AGENT])
    response = personas[Role.ADMIN].client.post(remove_url(target))
    assert response.status_code == 302
    assert not Membership.objects.for_company(target.company).filter(pk=target.pk).exists()
    # The removed person is now an outsider.
    team = team_url(target.company)
    assert personas[Role.AGENT].client.get(team).status_code == 404


def test_remove_with_htmx_empties_the_row(personas):
    target = membership_of(personas[Role.AGENT])
    response = personas[Role.ADMIN].client.post(remove_url(target), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content == b""
    assert not Membership.objects.for_company(target.company).filter(pk=target.pk).exists()


def test_admin_cannot_remove_an_owner(personas, company):
    add_member(company, "owner2@acme.test", Role.OWNER)
    target = membership_of(personas[Role.OWNER])
    assert personas[Role.ADMIN].client.post(remove_url(target)).status_code == 403
    assert Membership.objects.for_company(company).filter(pk=target.pk).exists()


def test_owner_removes_another_owner_but_not_the_last(personas, company):
    other = add_member(company, "owner2@acme.test", Role.OWNER)
    other_membership = Membership.objects.for_company(company).get(user=other)
    owner = personas[Role.OWNER]
    assert owner.client.post(remove_url(other_membership)).status_code == 302
    assert not Membership.objects.for_company(company).filter(user=other).exists()
    me = membership_of(owner)
    response = owner.client.post(remove_url(me), follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.for_company(company).filter(pk=me.pk).exists()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.AGENT, Role.VIEWER])
def test_lesser_roles_cannot_remove(personas, company, role):
    target = membership_of(personas[Role.ADMIN])
    assert personas[role].client.post(remove_url(target)).status_code == 403
    assert Membership.objects.for_company(company).filter(pk=target.pk).exists()


def test_any_member_may_leave(personas, company):
    viewer = personas[Role.VIEWER]
    leave = reverse("companies:team_leave", kwargs={"company_slug": company.slug})
    response = viewer.client.post(leave)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert not Membership.objects.for_company(company).filter(user=viewer.user).exists()


def test_last_owner_cannot_leave(owner, company):
    leave = reverse("companies:team_leave", kwargs={"company_slug": company.slug})
    response = owner.client.post(leave, follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.for_company(company).filter(user=owner.user).exists()


def test_leave_is_post_only(viewer, company):
    leave = reverse("companies:team_leave", kwargs={"company_slug": company.slug})
    assert viewer.client.get(leave).status_code == 405
    assert Membership.objects.for_company(company).filter(user=viewer.user).exists()


def test_writes_need_csrf(personas, company):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas[Role.OWNER].user)
    target = membership_of(personas[Role.VIEWER])
    assert client.post(role_url(target), {"role": Role.ADMIN}).status_code == 403
    assert client.post(remove_url(target)).status_code == 403
    assert (
        client.post(team_url(company), {"email": "x@example.com", "role": "viewer"}).status_code
        == 403
    )
    target.refresh_from_db()
    assert target.role == Role.VIEWER
    assert invites_of(company) == []
