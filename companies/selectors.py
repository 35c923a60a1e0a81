"""Reads for companies. The company is always an explicit keyword."""

from __future__ import annotations

from django.db.models import QuerySet

from companies.models import ApiKey, Company, Membership, TeamInvite, User


def memberships_of_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.for_user(user).select_related("company").order_by("company__name")


def membership_for(*, user: User, company_slug: str) -> Membership | None:
    return memberships_of_user(user=user).filter(company__slug=company_slug).first()


def members_list(*, company: Company) -> QuerySet[Membership]:
    return (
        Membership.objects.for_company(company).select_related("user").order_by("created_at", "id")
    )


def team_invites_pending(*, company: Company) -> QuerySet[TeamInvite]:
    from django.utils import timezone

    return (
        TeamInvite.objects.for_company(company)
        .filter(accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())
        .order_by("-created_at")
    )


def api_keys_list(*, company: Company) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_company(company).order_by("revoked_at", "-created_at")
