"""Writes for companies: tenants, memberships, teammate invitations, API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from companies.models import (
    ROLE_RANK,
    ApiKey,
    Company,
    Industry,
    Membership,
    Role,
    TeamInvite,
    User,
)

API_KEY_SCHEME = "nps"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40].strip("-") or "company"
    # Random suffix: slugs are public, so they must not reveal how many companies exist.
    for _attempt in range(10):
        slug = f"{base}-{secrets.token_hex(3)}"
        if not Company.objects.filter(slug=slug).exists():
            return slug
    raise RuntimeError("could not find a free company slug")


def company_create(
    *,
    name: str,
    owner: User,
    industry: str = Industry.OTHER,
    time_zone: str = "UTC",
    country: str = "",
    default_language: str = "en",
) -> Company:
    """Create a company with ``owner`` as its owner, in one transaction."""
    if not name.strip():
        raise ValidationError({"name": _("Enter the company name.")})
    if industry not in Industry.values:
        raise ValidationError({"industry": _("Unknown industry: %(value)s") % {"value": industry}})
    valid_zones = {value for value, _label in Company._meta.get_field("time_zone").choices or []}
    if time_zone not in valid_zones:
        raise ValidationError(
            {"time_zone": _("Unknown time zone: %(value)s") % {"value": time_zone}}
        )
    with transaction.atomic():
        company = Company.objects.create(
            name=name.strip(),
            slug=_unique_slug(name),
            industry=industry,
            time_zone=time_zone,
            country=country.upper(),
            default_language=default_language,
            sender_name=name.strip(),
        )
        Membership.objects.create(company=company, user=owner, role=Role.OWNER)
    return company


def user_create(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create a login. Raises ValidationError for a taken email or a weak password."""
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": _("A user with this email address already exists.")})
    candidate = User(email=email, first_name=first_name, last_name=last_name)
    validate_password(password, user=candidate)
    candidate.set_password(password)
    try:
        candidate.save()
    except IntegrityError as exc:  # a concurrent sign-up with the same email
        raise ValidationError(
            {"email": _("A user with this email address already exists.")}
        ) from exc
    return candidate


def user_mark_email_verified(*, user: User) -> None:
    """Record the user's address as verified (allauth's EmailAddress)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


def company_create_with_owner(
    *,
    name: str,
    owner_email: str,
    password: str,
    industry: str = Industry.OTHER,
    time_zone: str = "UTC",
) -> Company:
    """The command-line path: a new verified owner and their company, all or nothing."""
    with transaction.atomic():
        owner = user_create(email=owner_email, password=password)
        user_mark_email_verified(user=owner)
        return company_create(name=name, owner=owner, industry=industry, time_zone=time_zone)


def membership_change_role(*, company: Company, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    if membership.company_id != company.pk:
        raise ValidationError(_("Not a member of this company."))
    owners = Membership.objects.for_company(company).filter(role=Role.OWNER)
    if membership.role == Role.OWNER and role != Role.OWNER and owners.count() == 1:
        raise ValidationError({"role": _("A company needs at least one owner.")})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def membership_remove(*, company: Company, membership: Membership) -> None:
    owners = Membership.objects.for_company(company).filter(role=Role.OWNER)
    if membership.role == Role.OWNER and owners.count() == 1:
        raise ValidationError(_("A company needs at least one owner."))
    membership.delete()


# --- Teammate invitations ------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvite:
    invite: TeamInvite
    token: str  # goes into the emailed link; never stored


def team_invite_create(
    *, company: Company, email: str, role: str, invited_by: User | None
) -> IssuedInvite:
    """Create an invitation and email its accept link (after commit)."""
    email = User.objects.normalize_email(email).strip().lower()
    if role not in Role.values or role == Role.OWNER:
        raise ValidationError({"role": _("Choose admin, manager, agent or viewer.")})
    if Membership.objects.for_company(company).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": _("This person is already a member.")})
    token = secrets.token_urlsafe(32)
    invite = TeamInvite.objects.create(
        company=company,
        email=email,
        role=role,
        token_hash=sha256(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.TEAM_INVITE_TTL_DAYS),
    )
    from companies.emails import send_team_invite

    transaction.on_commit(lambda: send_team_invite(invite=invite, token=token))
    return IssuedInvite(invite=invite, token=token)


def team_invite_revoke(*, company: Company, invite: TeamInvite) -> None:
    TeamInvite.objects.for_company(company).filter(pk=invite.pk, accepted_at=None).update(
        revoked_at=timezone.now()
    )


def team_invite_find(*, token: str) -> TeamInvite | None:
    """Resolve an accept link to its invitation: the public pages' choke point for invites."""
    return (
        TeamInvite.objects.unscoped(reason="an invite link identifies its own company")
        .select_related("company")
        .filter(token_hash=sha256(token))
        .first()
    )


def team_invite_accept(*, invite: TeamInvite, user: User) -> Membership:
    """Join the invite's company. A member already keeps the higher of the two roles."""
    if not invite.is_pending:
        raise ValidationError(_("This invitation has expired or was already used."))
    if user.email.lower() != invite.email.lower():
        raise ValidationError(
            _("This invitation was sent to %(email)s; log in with that address to accept it.")
            % {"email": invite.email}
        )
    with transaction.atomic():
        claimed = (
            TeamInvite.objects.for_company(invite.company)
            .filter(pk=invite.pk, accepted_at=None, revoked_at=None)
            .update(accepted_at=timezone.now(), accepted_by=user)
        )
        if not claimed:
            raise ValidationError(_("This invitation has expired or was already used."))
        membership, created = Membership.objects.for_company(invite.company).get_or_create(
            company=invite.company, user=user, defaults={"role": invite.role}
        )
        if not created and ROLE_RANK[invite.role] > ROLE_RANK[membership.role]:
            membership.role = invite.role
            membership.save(update_fields=["role"])
        user_mark_email_verified(user=user)
    return membership


# --- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    key: str  # shown once


def api_key_create(
    *, company: Company, name: str, created_by: User | None = None, role: str = Role.ADMIN
) -> IssuedApiKey:
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give the key a name.")})
    if role not in (Role.ADMIN, Role.VIEWER):
        raise ValidationError({"role": _("Choose full access or read only.")})
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = f"{API_KEY_SCHEME}_{prefix}_{secret}"
    api_key = ApiKey.objects.create(
        company=company,
        name=name,
        prefix=prefix,
        key_hash=sha256(key),
        role=role,
        created_by=created_by,
    )
    return IssuedApiKey(api_key=api_key, key=key)


def api_key_revoke(*, company: Company, api_key: ApiKey) -> None:
    ApiKey.objects.for_company(company).filter(pk=api_key.pk, revoked_at=None).update(
        revoked_at=timezone.now()
    )


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key so that busy keys do not write per request."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < timedelta(minutes=1):
        return
    ApiKey.objects.filter(company_id=api_key.company_id, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
