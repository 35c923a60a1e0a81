"""Writes for companies: tenants, memberships, teammate invitations, API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from audit.context import AuditActor, current_actor
from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies import rls
from companies.models import (
    ROLE_RANK,
    ApiKey,
    Company,
    Industry,
    Membership,
    Role,
    SmsSenderKind,
    TeamInvite,
    User,
)
from companies.selectors import user_has_two_factor

API_KEY_SCHEME = "nps"
# Keys are ``nps_<8 hex>_<31 letters and digits>``: 44 characters (≈185 random bits), the most
# a Basic header built by Delighted's Ruby client can carry (its base64 wraps after 45 bytes).
API_KEY_SECRET_LENGTH = 31
_API_KEY_ALPHABET = string.ascii_letters + string.digits


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
    max_name = Company._meta.get_field("name").max_length or 120
    if len(name.strip()) > max_name:
        raise ValidationError(
            {"name": _("Keep the company name under %(max)d characters.") % {"max": max_name}}
        )
    if industry not in Industry.values:
        raise ValidationError({"industry": _("Unknown industry: %(value)s") % {"value": industry}})
    valid_zones = {value for value, _label in Company._meta.get_field("time_zone").choices or []}
    if time_zone not in valid_zones:
        raise ValidationError(
            {"time_zone": _("Unknown time zone: %(value)s") % {"value": time_zone}}
        )
    # A new company's first rows (its owner, default alert rules made on its creation) are
    # written before any choke point could name it: a system job for row-level security.
    with rls.system(reason="creating a company"), transaction.atomic():
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


def _validate_email_address(email: str) -> None:
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": _("Enter a valid email address.")}) from exc


def user_create(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create a login. Raises ValidationError for a taken email or a weak password."""
    email = User.objects.normalize_email(email).strip().lower()
    _validate_email_address(email)
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


def _locked_owner_ids(company: Company) -> set[int]:
    """The company's owners, row-locked until the transaction ends.

    Two owners demoting (or removing) each other at the same moment would otherwise both see
    "another owner remains" and leave the company with none.
    """
    return set(
        Membership.objects.for_company(company)
        .filter(role=Role.OWNER)
        .select_for_update()
        .values_list("pk", flat=True)
    )


def _check_may_touch_owner(*, acting: Membership | None, touches_owner: bool) -> None:
    # Only an owner makes or unmakes owners; ``acting`` is None for system/CLI callers.
    if acting is not None and touches_owner and acting.role != Role.OWNER:
        raise PermissionDenied(_("Only an owner can make or unmake owners."))


def membership_change_role(
    *,
    company: Company,
    membership: Membership,
    role: str,
    acting: Membership | None = None,
) -> Membership:
    """Give a member another role. ``acting`` is the member making the change (web)."""
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    if membership.company_id != company.pk:
        raise ValidationError(_("Not a member of this company."))
    with transaction.atomic():
        owner_ids = _locked_owner_ids(company)
        is_owner = membership.pk in owner_ids
        _check_may_touch_owner(acting=acting, touches_owner=is_owner or role == Role.OWNER)
        if is_owner and role != Role.OWNER and len(owner_ids) == 1:
            raise ValidationError(
                {"role": _("A company needs at least one owner: make someone else owner first.")}
            )
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        if before != role:
            audit_record(
                company=company,
                action=AuditAction.MEMBER_ROLE_CHANGED,
                target=membership,
                target_label=membership.user.email,
                changes={"role": [before, role]},
            )
    return membership


def membership_remove(
    *, company: Company, membership: Membership, acting: Membership | None = None
) -> None:
    """Remove a member (or let them leave). The last owner cannot go."""
    if membership.company_id != company.pk:
        raise ValidationError(_("Not a member of this company."))
    with transaction.atomic():
        owner_ids = _locked_owner_ids(company)
        is_owner = membership.pk in owner_ids
        if acting is None or acting.pk != membership.pk:  # leaving yourself needs no rank
            _check_may_touch_owner(acting=acting, touches_owner=is_owner)
        if is_owner and len(owner_ids) == 1:
            raise ValidationError(
                _("A company needs at least one owner: make someone else owner first.")
            )
        audit_record(
            company=company,
            action=AuditAction.MEMBER_REMOVED,
            target=membership,
            target_label=membership.user.email,
            changes={"role": [membership.role, None]},
        )
        membership.delete()


# --- Teammate invitations ------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvite:
    invite: TeamInvite
    token: str  # goes into the emailed link; never stored


def membership_getting_started_set(
    *, company: Company, membership: Membership, hidden: bool
) -> None:
    """Put the overview's "Getting started" steps away for this member, or bring them back."""
    value = timezone.now() if hidden else None
    Membership.objects.for_company(company).filter(pk=membership.pk).update(
        getting_started_hidden_at=value
    )
    membership.getting_started_hidden_at = value


def team_invite_create(
    *, company: Company, email: str, role: str, invited_by: User | None
) -> IssuedInvite:
    """Create an invitation and email its accept link (after commit)."""
    email = User.objects.normalize_email(email).strip().lower()
    _validate_email_address(email)
    if role not in Role.values or role == Role.OWNER:
        raise ValidationError({"role": _("Choose admin, manager, agent or viewer.")})
    if Membership.objects.for_company(company).filter(user__email__iexact=email).exists():
        raise ValidationError({"email": _("This person is already a member.")})
    pending = TeamInvite.objects.for_company(company).filter(
        email__iexact=email, accepted_at=None, revoked_at=None, expires_at__gt=timezone.now()
    )
    if pending.exists():
        raise ValidationError(
            {
                "email": _(
                    "An invitation to this address is already pending; revoke it to send a new one."
                )
            }
        )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invite = TeamInvite.objects.create(
            company=company,
            email=email,
            role=role,
            token_hash=sha256(token),
            invited_by=invited_by,
            expires_at=timezone.now() + timedelta(days=settings.TEAM_INVITE_TTL_DAYS),
        )
        audit_record(
            company=company,
            action=AuditAction.TEAM_INVITE_CREATED,
            target=invite,
            target_label=email,
            changes={"email": [None, email], "role": [None, role]},
        )
    from companies.emails import send_team_invite

    transaction.on_commit(lambda: send_team_invite(invite=invite, token=token))
    return IssuedInvite(invite=invite, token=token)


def team_invite_revoke(*, company: Company, invite: TeamInvite) -> None:
    with transaction.atomic():
        revoked = (
            TeamInvite.objects.for_company(company)
            .filter(pk=invite.pk, accepted_at=None, revoked_at=None)
            .update(revoked_at=timezone.now())
        )
        if revoked:
            audit_record(
                company=company,
                action=AuditAction.TEAM_INVITE_REVOKED,
                target=invite,
                target_label=invite.email,
            )


def team_invite_find(*, token: str) -> TeamInvite | None:
    """Resolve an accept link to its invitation: the public pages' choke point for invites."""
    with rls.lookup(reason="an invite link identifies its own company") as found:
        invite = (
            TeamInvite.objects.unscoped(reason="an invite link identifies its own company")
            .select_related("company")
            .filter(token_hash=sha256(token))
            .first()
        )
        if invite is not None:
            found.found(invite.company_id)
    return invite


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
        before = None if created else membership.role
        if not created and ROLE_RANK[invite.role] > ROLE_RANK[membership.role]:
            membership.role = invite.role
            membership.save(update_fields=["role"])
        if before != membership.role:
            audit_record(
                company=invite.company,
                action=AuditAction.MEMBER_JOINED if created else AuditAction.MEMBER_ROLE_CHANGED,
                target=membership,
                target_label=user.email,
                changes={"role": [before, membership.role]},
                # The person accepting acts, signed in or not yet (a new login).
                actor=AuditActor.for_user(user, ip=current_actor().ip),
            )
        user_mark_email_verified(user=user)
    return membership


def team_invite_accept_new_user(
    *, invite: TeamInvite, password: str, first_name: str = "", last_name: str = ""
) -> Membership:
    """Create the invited person's login and join the company, all or nothing.

    The address counts as verified: the accept link could only be read from that mailbox.
    """
    with transaction.atomic():
        user = user_create(
            email=invite.email,
            password=password,
            first_name=first_name.strip(),
            last_name=last_name.strip(),
        )
        return team_invite_accept(invite=invite, user=user)


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
    max_name = ApiKey._meta.get_field("name").max_length or 80
    if len(name) > max_name:
        raise ValidationError(
            {"name": _("Keep the name under %(max)d characters.") % {"max": max_name}}
        )
    if role not in (Role.ADMIN, Role.VIEWER):
        raise ValidationError({"role": _("Choose full access or read only.")})
    prefix = secrets.token_hex(4)
    secret = "".join(secrets.choice(_API_KEY_ALPHABET) for _ in range(API_KEY_SECRET_LENGTH))
    key = f"{API_KEY_SCHEME}_{prefix}_{secret}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            company=company,
            name=name,
            prefix=prefix,
            key_hash=sha256(key),
            role=role,
            created_by=created_by,
        )
        audit_record(
            company=company,
            action=AuditAction.API_KEY_CREATED,
            target=api_key,
            changes={"name": [None, name], "role": [None, role]},
        )
    return IssuedApiKey(api_key=api_key, key=key)


def api_key_revoke(*, company: Company, api_key: ApiKey) -> None:
    with transaction.atomic():
        revoked = (
            ApiKey.objects.for_company(company)
            .filter(pk=api_key.pk, revoked_at=None)
            .update(revoked_at=timezone.now())
        )
        if revoked:
            audit_record(company=company, action=AuditAction.API_KEY_REVOKED, target=api_key)


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key so that busy keys do not write per request."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < timedelta(minutes=1):
        return
    ApiKey.objects.filter(company_id=api_key.company_id, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


# --- Company settings ----------------------------------------------------------------------------

COMPANY_EDITABLE_FIELDS = frozenset(
    {
        "name",
        "industry",
        "country",
        "time_zone",
        "default_language",
        "sender_name",
        "reply_to",
        "retention_months",
    }
)
# The SMS and WhatsApp settings page (company_sms_update).
COMPANY_SMS_FIELDS = frozenset(
    {
        "sms_sender",
        "sms_sender_kind",
        "sms_rate_per_second",
        "whatsapp_sender",
        "quiet_hours_start",
        "quiet_hours_end",
        "whatsapp_templates",
        "whatsapp_variables",
    }
)
# What a WhatsApp template's numbered variables carry unless the company says otherwise.
WHATSAPP_DEFAULT_VARIABLES = {"1": "name", "2": "company", "3": "link"}
# The values a variable may carry (surveys.services fills them in for each message).
WHATSAPP_VARIABLE_VALUES = ("name", "first_name", "company", "survey", "link")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


def whatsapp_templates_clean(value: object) -> dict[str, str]:
    """``{language: content SID}``; blank entries dropped."""
    if not isinstance(value, dict):
        raise ValidationError({"whatsapp_templates": _("A content SID per language.")})
    cleaned: dict[str, str] = {}
    languages = {code for code, _label in settings.SURVEY_LANGUAGES}
    for language, given in value.items():
        sid = str(given or "").strip()
        if not sid:
            continue
        if language not in languages or not _CONTENT_SID.match(sid):
            raise ValidationError(
                {"whatsapp_templates": _("A content SID starts with HX and has 34 characters.")}
            )
        cleaned[str(language)] = sid
    return cleaned


def whatsapp_variables_parse(text: str) -> dict[str, str]:
    """``"1=name, 2=company, 3=link"`` → ``{"1": "name", ...}`` (a ValidationError on
    ``whatsapp_variables`` for anything else); blank → {} (the default mapping)."""
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.replace(";", ",").split(","))):
        number, sep, value = (item.strip() for item in part.partition("="))
        if not sep or not number.isdigit() or not 1 <= int(number) <= 20:
            raise ValidationError(
                {"whatsapp_variables": _("Write number=value pairs, e.g. 1=name, 2=link.")}
            )
        if value not in WHATSAPP_VARIABLE_VALUES:
            raise ValidationError(
                {
                    "whatsapp_variables": _("Unknown value %(value)s: use %(choices)s.")
                    % {"value": value or "''", "choices": ", ".join(WHATSAPP_VARIABLE_VALUES)}
                }
            )
        mapping[str(int(number))] = value
    if mapping and "link" not in mapping.values():
        raise ValidationError({"whatsapp_variables": _("One variable must carry the answer link.")})
    return mapping


def whatsapp_variables_text(mapping: dict[str, str]) -> str:
    return ", ".join(f"{n}={v}" for n, v in sorted(mapping.items(), key=lambda i: int(i[0])))


def company_twilio_account_set(*, company: Company, account_sid: str, auth_token: str) -> Company:
    """Send through the company's own Twilio account. The auth token is stored encrypted and
    never shown again; an empty ``account_sid`` goes back to the platform's account."""
    from companies.credentials import secret_encrypt

    fields = ["twilio_account_sid", "twilio_auth_token_encrypted"]
    before = snapshot(company, fields)
    account_sid = account_sid.strip()
    if not account_sid:
        company.twilio_account_sid, company.twilio_auth_token_encrypted = "", ""
    else:
        if not _ACCOUNT_SID.match(account_sid):
            raise ValidationError(
                {"twilio_account_sid": _("An account SID starts with AC and has 34 characters.")}
            )
        auth_token = auth_token.strip()
        if not auth_token and account_sid != company.twilio_account_sid:
            raise ValidationError({"twilio_auth_token": _("Enter the account's auth token.")})
        company.twilio_account_sid = account_sid
        if auth_token:
            company.twilio_auth_token_encrypted = secret_encrypt(auth_token)
    with transaction.atomic():
        company.save(update_fields=fields)
        _audit_settings(
            company,
            AuditAction.SMS_SETTINGS_UPDATED,
            changes_between(
                before, snapshot(company, fields), secret=["twilio_auth_token_encrypted"]
            ),
        )
    return company


def _audit_settings(company: Company, action: str, changes: dict[str, list[object]]) -> None:
    if changes:  # saving the form unchanged changes nothing worth a line
        audit_record(company=company, action=action, target=company, changes=changes)


def _e164_clean(value: str, field: str) -> str:
    import phonenumbers

    value = value.strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValidationError(
            {field: _("Use a phone number in international format, e.g. +77001234567.")}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sms_sender_clean(*, value: str, kind: str) -> str:
    """A Messaging Service SID (``MG`` + 32 hex) for that kind, else an E.164 number (a
    short code: its digits)."""
    value = value.strip()
    if not value:
        return ""
    if kind == SmsSenderKind.MESSAGING_SERVICE:
        if not _MESSAGING_SERVICE_SID.match(value):
            raise ValidationError(
                {"sms_sender": _("A Messaging Service SID starts with MG and has 34 characters.")}
            )
        return value
    if kind == SmsSenderKind.SHORT_CODE:
        if not value.isdigit() or not 3 <= len(value) <= 8:
            raise ValidationError({"sms_sender": _("A short code is 3 to 8 digits.")})
        return value
    return _e164_clean(value, "sms_sender")


def company_sms_update(*, company: Company, **fields: object) -> Company:
    """Change the company's SMS/WhatsApp sender, throughput and quiet hours (admins).

    The sender is checked against its kind; a sender another company uses is refused
    (replies are matched to the company by it).
    """
    unknown = set(fields) - COMPANY_SMS_FIELDS
    if unknown:
        raise TypeError(f"company_sms_update() cannot change {', '.join(sorted(unknown))}")
    kind = str(fields.get("sms_sender_kind", company.sms_sender_kind))
    sender = str(fields.get("sms_sender", company.sms_sender) or "")
    if "sms_sender" in fields or "sms_sender_kind" in fields:
        fields["sms_sender"] = sms_sender_clean(value=sender, kind=kind)
    if "whatsapp_sender" in fields:
        fields["whatsapp_sender"] = _e164_clean(
            str(fields["whatsapp_sender"] or ""), "whatsapp_sender"
        )
    if "whatsapp_templates" in fields:
        fields["whatsapp_templates"] = whatsapp_templates_clean(fields["whatsapp_templates"])
    if "whatsapp_variables" in fields:
        value = fields["whatsapp_variables"]
        if isinstance(value, dict):
            value = whatsapp_variables_text({str(k): str(v) for k, v in value.items()})
        fields["whatsapp_variables"] = whatsapp_variables_parse(str(value or ""))
    start = fields.get("quiet_hours_start", company.quiet_hours_start)
    end = fields.get("quiet_hours_end", company.quiet_hours_end)
    if start == end:
        raise ValidationError(
            {"quiet_hours_end": _("The sending window needs a start and an end that differ.")}
        )
    for field, taken in (
        ("sms_sender", fields.get("sms_sender")),
        ("whatsapp_sender", fields.get("whatsapp_sender")),
    ):
        if taken and Company.objects.filter(**{field: taken}).exclude(pk=company.pk).exists():
            raise ValidationError({field: _("Another company already sends from this sender.")})
    import copy

    candidate = copy.copy(company)
    for name, value in fields.items():
        setattr(candidate, name, value)
    candidate.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            candidate.save(update_fields=sorted(fields))
            _audit_settings(
                company,
                AuditAction.SMS_SETTINGS_UPDATED,
                changes_between(snapshot(company, fields), snapshot(candidate, fields)),
            )
    except IntegrityError as exc:  # a concurrent save took the sender
        raise ValidationError(
            {"sms_sender": _("Another company already sends from this sender.")}
        ) from exc
    for name in fields:
        setattr(company, name, getattr(candidate, name))
    return company


def country_code_clean(value: str) -> str:
    """Normalise an ISO 3166-1 alpha-2 code ("kz" → "KZ"); empty stays empty."""
    import phonenumbers

    code = value.strip().upper()
    if code and code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            {"country": _("Use a two-letter country code, e.g. KZ or US.")}, code="country"
        )
    return code


def company_update(*, company: Company, **fields: object) -> Company:
    """Change a company's settings; all given fields or none.

    Validates like the model does (choices, lengths, email) plus the country code, on a copy,
    so a rejected change leaves ``company`` untouched in memory as well as in the database.
    Raises ValidationError keyed by field.
    """
    import copy

    unknown = set(fields) - COMPANY_EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"company_update() cannot change {', '.join(sorted(unknown))}")
    if "country" in fields:
        fields["country"] = country_code_clean(str(fields["country"] or ""))
    if "name" in fields:
        fields["name"] = str(fields["name"] or "").strip()
        if not fields["name"]:
            raise ValidationError({"name": _("Enter the company name.")})
    candidate = copy.copy(company)
    for name, value in fields.items():
        setattr(candidate, name, value)
    candidate.full_clean(validate_unique=False)
    with transaction.atomic():
        candidate.save(update_fields=sorted(fields))
        _audit_settings(
            company,
            AuditAction.SETTINGS_UPDATED,
            changes_between(snapshot(company, fields), snapshot(candidate, fields)),
        )
    for name in fields:
        setattr(company, name, getattr(candidate, name))
    return company


def company_two_factor_requirement_set(*, company: Company, required: bool, actor: User) -> Company:
    """Require (or stop requiring) two-factor sign-in of ``company``'s members.

    Whoever turns it on must have it already: otherwise the next page would lock them out of
    their own settings until they set it up. Raises ValidationError keyed by ``require_mfa``.
    """
    if required and not user_has_two_factor(user=actor):
        raise ValidationError(
            {"require_mfa": _("Turn on two-factor sign-in for your own account first.")}
        )
    before = snapshot(company, ["require_mfa"])
    company.require_mfa = required
    with transaction.atomic():
        company.save(update_fields=["require_mfa"])
        _audit_settings(
            company,
            AuditAction.TWO_FACTOR_REQUIREMENT_CHANGED,
            changes_between(before, snapshot(company, ["require_mfa"])),
        )
    return company


def user_set_language(*, user: User, language: str) -> None:
    """Remember the interface language a person chose (used at login and in their emails)."""
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("Unknown language.")})
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
