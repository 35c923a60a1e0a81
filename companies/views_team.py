"""Team pages (members, teammate invitations, API keys) and the public invite-accept page.

Company pages live under ``/c/<company_slug>/``: the tenancy middleware has already checked
membership and the declared role before any of these run, and set ``request.company`` and
``request.membership``. Finer rules that depend on the *target* (only an owner touches
owners, the last owner stays) are enforced by the services; the views only decide what to
offer and translate service errors into form errors or flash messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from companies.forms_team import (
    INVITABLE_ROLES,
    ApiKeyForm,
    InviteSignupForm,
    MemberRoleForm,
    TeamInviteForm,
    add_service_errors,
)
from companies.models import Membership, Role, TeamInvite, role_at_least
from companies.permissions import company_view
from companies.selectors import (
    api_key_get,
    api_keys_list,
    member_get,
    members_list,
    team_invite_get,
    team_invites_pending,
    user_exists_with_email,
)
from companies.services import (
    api_key_create,
    api_key_revoke,
    membership_change_role,
    membership_remove,
    team_invite_accept,
    team_invite_accept_new_user,
    team_invite_create,
    team_invite_find,
    team_invite_revoke,
)

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from companies.models import Company, User

    class CompanyRequest(HttpRequest):
        """What the middlewares guarantee on a company page (for the type checker only)."""

        company: Company
        membership: Membership
        user: User
        htmx: HtmxDetails
else:
    CompanyRequest = HttpRequest


# --- Members -------------------------------------------------------------------------------------


@dataclass
class MemberRow:
    """One line of the members table, with what the person looking at it may do there."""

    membership: Membership
    is_you: bool
    is_last_owner: bool
    role_choices: list[tuple[str, str]] = field(default_factory=list)  # empty: read-only
    can_remove: bool = False
    saved: bool = False  # just changed through htmx: say so in the row
    error: str = ""


def _member_rows(request: CompanyRequest, members: list[Membership]) -> list[MemberRow]:
    acting = request.membership
    acting_is_owner = acting.role == Role.OWNER
    acting_is_admin = role_at_least(acting.role, Role.ADMIN)
    owner_count = sum(1 for m in members if m.role == Role.OWNER)
    all_roles = [(str(value), str(label)) for value, label in Role.choices]
    rows = []
    for member in members:
        is_owner = member.role == Role.OWNER
        is_last_owner = is_owner and owner_count == 1
        row = MemberRow(
            membership=member, is_you=member.pk == acting.pk, is_last_owner=is_last_owner
        )
        may_touch = acting_is_admin and (acting_is_owner or not is_owner)
        if may_touch and not is_last_owner:
            row.role_choices = (
                all_roles if acting_is_owner else [(str(v), str(lbl)) for v, lbl in INVITABLE_ROLES]
            )
        # Your own row offers "Leave" (any member); others' rows "Remove" (admin+).
        row.can_remove = not is_last_owner and (row.is_you or may_touch)
        rows.append(row)
    return rows


def _member_row(request: CompanyRequest, member: Membership) -> MemberRow:
    members = list(members_list(company=request.company))
    rows = _member_rows(request, members)
    return next(row for row in rows if row.membership.pk == member.pk)


def _team_page(
    request: CompanyRequest, *, invite_form: TeamInviteForm, status: int = 200
) -> HttpResponse:
    company = request.company
    members = list(members_list(company=company))
    return render(
        request,
        "companies/team.html",
        {
            "rows": _member_rows(request, members),
            "invites": team_invites_pending(company=company),
            "invite_form": invite_form,
            "invite_ttl_days": settings.TEAM_INVITE_TTL_DAYS,
        },
        status=status,
    )


@company_view(Role.VIEWER, write_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def team(request: CompanyRequest) -> HttpResponse:
    """Members and pending invitations; a POST here is the invite form (admin+)."""
    if request.method != "POST":
        return _team_page(request, invite_form=TeamInviteForm())
    form = TeamInviteForm(request.POST)
    if form.is_valid():
        try:
            issued = team_invite_create(
                company=request.company,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s. The link is valid until %(date)s.")
                % {
                    "email": issued.invite.email,
                    "date": date_format(
                        timezone.localtime(issued.invite.expires_at), "DATE_FORMAT"
                    ),
                },
            )
            return redirect("companies:team", company_slug=request.company.slug)
    return _team_page(request, invite_form=form, status=400)


def _get_member(request: CompanyRequest, member_id: str) -> Membership:
    member = member_get(company=request.company, public_id=member_id)
    if member is None:
        raise Http404("No such member")
    return member


@company_view(Role.ADMIN)
@require_POST
def member_role(request: CompanyRequest, member_id: str) -> HttpResponse:
    """Change a member's role. With htmx the row is swapped in place; without, a redirect."""
    member = _get_member(request, member_id)
    form = MemberRoleForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            # PermissionDenied (an admin touching owners) propagates: 403.
            membership_change_role(
                company=request.company,
                membership=member,
                role=form.cleaned_data["role"],
                acting=request.membership,
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = _("Choose one of the listed roles.")

    if request.htmx:
        if member.pk == request.membership.pk and not error:
            # Your own rank changed: every control on the page may be stale.
            return HttpResponseClientRedirect(
                reverse("companies:team", kwargs={"company_slug": request.company.slug})
            )
        member.refresh_from_db(fields=["role"])
        row = _member_row(request, member)
        row.error = error
        row.saved = not error
        return render(request, "companies/team_member_row.html", {"row": row})
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request,
            _("%(person)s is now %(role)s.")
            % {"person": member.user, "role": member.get_role_display()},
        )
    return redirect("companies:team", company_slug=request.company.slug)


def _remove(request: CompanyRequest, member: Membership) -> HttpResponse:
    """Remove ``member`` (possibly the requester). htmx: the row goes, or the browser goes home."""
    leaving = member.pk == request.membership.pk
    team_url = reverse("companies:team", kwargs={"company_slug": request.company.slug})
    try:
        membership_remove(company=request.company, membership=member, acting=request.membership)
    except ValidationError as exc:
        error = " ".join(exc.messages)
        if request.htmx:
            row = _member_row(request, member)
            row.error = error
            return render(request, "companies/team_member_row.html", {"row": row})
        messages.error(request, error)
        return redirect(team_url)
    if leaving:
        messages.success(request, _("You left %(company)s.") % {"company": request.company.name})
        home = reverse("home")
        return HttpResponseClientRedirect(home) if request.htmx else redirect(home)
    if request.htmx:
        return HttpResponse("")
    messages.success(
        request,
        _("%(person)s was removed from the team.") % {"person": member.user},
    )
    return redirect(team_url)


@company_view(Role.ADMIN)
@require_POST
def member_remove(request: CompanyRequest, member_id: str) -> HttpResponse:
    """Remove a member. Only an owner removes owners; the last owner stays (services)."""
    return _remove(request, _get_member(request, member_id))


@company_view(Role.VIEWER)
@require_POST
def team_leave(request: CompanyRequest) -> HttpResponse:
    """Leave the company yourself: any member may, except its last owner."""
    return _remove(request, request.membership)


@company_view(Role.ADMIN)
@require_POST
def invite_revoke(request: CompanyRequest, invite_id: str) -> HttpResponse:
    invite = team_invite_get(company=request.company, public_id=invite_id)
    if invite is None:
        raise Http404("No such invitation")
    team_invite_revoke(company=request.company, invite=invite)
    messages.success(
        request, _("The invitation to %(email)s was revoked.") % {"email": invite.email}
    )
    return redirect("companies:team", company_slug=request.company.slug)


# --- API keys ------------------------------------------------------------------------------------


@company_view(Role.ADMIN)
@require_http_methods(["GET", "POST"])
@never_cache  # the response to a create carries the full key: keep it out of every cache
def api_keys(request: CompanyRequest) -> HttpResponse:
    """List keys; a POST creates one and shows its full value in this response only."""
    form = ApiKeyForm()
    new_key = None
    status = 200
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                new_key = api_key_create(
                    company=request.company,
                    name=form.cleaned_data["name"],
                    role=form.cleaned_data["role"],
                    created_by=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
                status = 400
            else:
                form = ApiKeyForm()
                status = 201
        else:
            status = 400
    return render(
        request,
        "companies/api_keys.html",
        {"keys": api_keys_list(company=request.company), "form": form, "new_key": new_key},
        status=status,
    )


@company_view(Role.ADMIN)
@require_POST
def api_key_revoke_view(request: CompanyRequest, key_id: str) -> HttpResponse:
    api_key = api_key_get(company=request.company, public_id=key_id)
    if api_key is None:
        raise Http404("No such API key")
    api_key_revoke(company=request.company, api_key=api_key)
    messages.success(
        request,
        _("The key “%(name)s” was revoked; requests using it now fail.") % {"name": api_key.name},
    )
    return redirect("companies:api_keys", company_slug=request.company.slug)


# --- Accepting an invitation (public: the token is the scope) -----------------------------------


def _invite_gone(request: HttpRequest, invite: TeamInvite | None) -> HttpResponse:
    """404 for a token we never issued; 410 for one that was good once."""
    if invite is None:
        return render(request, "companies/invite_invalid.html", {"reason": "unknown"}, status=404)
    if invite.accepted_at is not None:
        reason = "accepted"
    elif invite.revoked_at is not None:
        reason = "revoked"
    else:
        reason = "expired"
    return render(
        request,
        "companies/invite_invalid.html",
        {"reason": reason, "invite": invite},
        status=410,
    )


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    messages.success(
        request,
        _("Welcome to %(company)s! You joined as %(role)s.")
        % {"company": membership.company.name, "role": membership.get_role_display()},
    )
    return redirect("companies:overview", company_slug=membership.company.slug)


@require_http_methods(["GET", "POST"])
@never_cache
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link. A GET only shows the invitation; joining always takes a POST.

    Mail scanners open every link, so nothing here may change state on GET.
    """
    invite = team_invite_find(token=token)
    if invite is None or not invite.is_pending:
        return _invite_gone(request, invite)
    if request.user.is_authenticated:
        return _invite_accept_logged_in(request, invite)
    return _invite_accept_new_account(request, invite)


def _invite_accept_logged_in(request: HttpRequest, invite: TeamInvite) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    context: dict[str, object] = {"invite": invite}
    if user.email.lower() != invite.email.lower():
        context["wrong_user"] = True
        return render(request, "companies/invite_accept.html", context, status=403)
    if request.method == "POST":
        try:
            membership = team_invite_accept(invite=invite, user=user)
        except ValidationError:  # used or revoked between the GET and this POST
            invite.refresh_from_db()
            return _invite_gone(request, invite)
        return _joined(request, membership)
    return render(request, "companies/invite_accept.html", context)


def _invite_accept_new_account(request: HttpRequest, invite: TeamInvite) -> HttpResponse:
    """Anonymous visitor: sign up for the invited address, or go log in and come back."""
    has_account = user_exists_with_email(email=invite.email)
    login_url = reverse("account_login") + "?" + urlencode({"next": request.path})
    form = InviteSignupForm(email=invite.email)
    status = 200
    if request.method == "POST":
        status = 400
        if not has_account:
            form = InviteSignupForm(request.POST, email=invite.email)
            if form.is_valid():
                try:
                    membership = team_invite_accept_new_user(
                        invite=invite,
                        password=form.cleaned_data["password1"],
                        first_name=form.cleaned_data["first_name"],
                        last_name=form.cleaned_data["last_name"],
                    )
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    login(
                        request,
                        membership.user,
                        backend="django.contrib.auth.backends.ModelBackend",
                    )
                    return _joined(request, membership)
    return render(
        request,
        "companies/invite_accept.html",
        {"invite": invite, "form": form, "has_account": has_account, "login_url": login_url},
        status=status,
    )
