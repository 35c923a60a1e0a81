"""Reads for companies. The company is always an explicit keyword."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.db.models import F, QuerySet

from companies.models import ApiKey, Company, Membership, TeamInvite, User


def memberships_of_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.for_user(user).select_related("company").order_by("company__name")


def user_exists_with_email(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email.strip()).exists()


def user_has_two_factor(*, user: User) -> bool:
    """Whether signing in as ``user`` asks for a second factor (an authenticator app or a
    passkey/security key; recovery codes alone are a fallback, not a factor)."""
    return bool(is_mfa_enabled(user, [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]))


def membership_for(*, user: User, company_slug: str) -> Membership | None:
    return memberships_of_user(user=user).filter(company__slug=company_slug).first()


def members_list(*, company: Company) -> QuerySet[Membership]:
    return (
        Membership.objects.for_company(company).select_related("user").order_by("created_at", "id")
    )


def member_get(*, company: Company, public_id: str) -> Membership | None:
    return members_list(company=company).filter(public_id=public_id).first()


def team_invites_pending(*, company: Company) -> QuerySet[TeamInvite]:
    from django.utils import timezone

    return (
        TeamInvite.objects.for_company(company)
        .filter(accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())
        .select_related("invited_by")
        .order_by("-created_at")
    )


def team_invite_get(*, company: Company, public_id: str) -> TeamInvite | None:
    return TeamInvite.objects.for_company(company).filter(public_id=public_id).first()


def api_keys_list(*, company: Company) -> QuerySet[ApiKey]:
    # Active keys first (NULL revoked_at sorts last in ascending order on PostgreSQL, hence the
    # explicit nulls_first), newest first within each group.
    return (
        ApiKey.objects.for_company(company)
        .select_related("created_by")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at")
    )


def api_key_get(*, company: Company, public_id: str) -> ApiKey | None:
    return ApiKey.objects.for_company(company).filter(public_id=public_id).first()
