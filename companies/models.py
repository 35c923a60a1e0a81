from __future__ import annotations

import base64
import datetime
import secrets
import threading
import time
import zoneinfo
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.tenancy import TenantManager, TenantModel, TenantQuerySet


def new_public_id() -> str:
    """A random public identifier (96 bits, URL-safe), never a sequential integer.

    Never starts with ``-``: such an id read as an option on the command line
    (``create_api_key --survey -x…`` failed), one id in 64.
    """
    while True:
        value = secrets.token_urlsafe(12)
        if not value.startswith("-"):
            return value


# The last sequence number new_ordered_public_ids gave in this process (see there).
_ordered_last = 0
_ordered_lock = threading.Lock()


def new_ordered_public_ids(count: int) -> list[str]:
    """``count`` public ids that sort in the order they are made, for a table that takes
    rows in bulk (contacts): 32 characters, a sequence number (17 hex digits: the time in
    milliseconds, then a 20-bit counter, increasing within a process even within one
    millisecond) and 90 random bits (15 characters of URL-safe base64).

    A new id lands at the right end of the table's unique index on (company, public_id)
    instead of on a random page of it: a million-contact import spends a quarter less time
    inserting. Unguessable all the same; an id tells when its row was made, as the row's
    ``created_at`` does. One read of the system's random source for all of them.
    """
    global _ordered_last  # noqa: PLW0603 (the process's sequence, under its lock)
    with _ordered_lock:
        first = max((time.time_ns() // 1_000_000) << 20, _ordered_last + 1)
        _ordered_last = first + count - 1
    text = base64.urlsafe_b64encode(secrets.token_bytes(12 * count)).decode("ascii")
    return [f"{first + index:017x}{text[16 * index : 16 * index + 15]}" for index in range(count)]


def new_ordered_public_id() -> str:
    """One id of ``new_ordered_public_ids``: the default of ``Contact.public_id``."""
    return new_ordered_public_ids(1)[0]


TIME_ZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones()) if "/" in tz] + [
    ("UTC", "UTC")
]


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person who logs in. Identified by email; belongs to companies through Membership."""

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    # Where the person is (digests go out at their local hour); blank: the company's zone.
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, blank=True
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.get_full_name() or self.email


class Industry(models.TextChoices):
    """The fixed list the published benchmarks in shared/data/benchmarks.csv map onto."""

    RETAIL = "retail", _("Retail")
    ECOMMERCE = "ecommerce", _("E-commerce")
    SOFTWARE = "software", _("Software & SaaS")
    TELECOM = "telecom", _("Telecom & internet")
    BANKING = "banking", _("Banking & payments")
    INSURANCE = "insurance", _("Insurance")
    HEALTHCARE = "healthcare", _("Healthcare")
    EDUCATION = "education", _("Education")
    HOSPITALITY = "hospitality", _("Hospitality (restaurants, cafés, hotels)")
    TRAVEL = "travel", _("Travel (airlines, car rental)")
    TRANSPORT = "transport", _("Transport & logistics")
    MANUFACTURING = "manufacturing", _("Manufacturing")
    B2B_SERVICES = "b2b_services", _("B2B services")
    PUBLIC_SECTOR = "public_sector", _("Public sector")
    OTHER = "other", _("Other")


class SmsSenderKind(models.TextChoices):
    """What a company sends SMS from; it sets the default messages per second (Twilio's)."""

    MESSAGING_SERVICE = "messaging_service", _("Twilio Messaging Service")
    LONG_CODE = "long_code", _("Phone number (long code)")
    TOLL_FREE = "toll_free", _("Toll-free number")
    SHORT_CODE = "short_code", _("Short code")


# Messages per second Twilio allows per sender, by kind (a Messaging Service: its numbers'
# sum, so the company says; 1 until it does).
SMS_DEFAULT_RATES: dict[str, float] = {
    SmsSenderKind.MESSAGING_SERVICE: 1.0,
    SmsSenderKind.LONG_CODE: 1.0,
    SmsSenderKind.TOLL_FREE: 3.0,
    SmsSenderKind.SHORT_CODE: 100.0,
}


# Bounds of Company.retention_months. Below three months a quarter-on-quarter trend would lose
# its comments mid-comparison; ten years is longer than any retention law asks.
RETENTION_MIN_MONTHS = 3
RETENTION_MAX_MONTHS = 120


def _default_quiet_start() -> datetime.time:
    return datetime.time(9, 0)


def _default_quiet_end() -> datetime.time:
    return datetime.time(20, 0)


class Company(models.Model):
    """A tenant. Everything a customer owns hangs off one of these."""

    slug = models.SlugField(_("Address name"), max_length=60, unique=True)
    name = models.CharField(_("company name"), max_length=120)
    industry = models.CharField(
        _("industry"), max_length=32, choices=Industry.choices, default=Industry.OTHER
    )
    country = models.CharField(_("country"), max_length=2, blank=True, help_text="ISO 3166-1")
    time_zone = models.CharField(
        _("time zone"), max_length=64, choices=TIME_ZONE_CHOICES, default="UTC"
    )
    default_language = models.CharField(
        _("default survey language"),
        max_length=8,
        choices=settings.SURVEY_LANGUAGES,
        default="en",
    )
    sender_name = models.CharField(_("sender name"), max_length=120, blank=True)
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    # SMS and WhatsApp (notifications/sms.py). The sender is a Messaging Service SID (MG…)
    # or a phone number in E.164; inbound replies are matched to the company by it.
    sms_sender = models.CharField(_("SMS sender"), max_length=64, blank=True)
    sms_sender_kind = models.CharField(
        _("sender type"),
        max_length=20,
        choices=SmsSenderKind.choices,
        default=SmsSenderKind.LONG_CODE,
    )
    sms_rate_per_second = models.FloatField(
        _("messages per second"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1), MaxValueValidator(1000)],
    )
    # WhatsApp sender (E.164, without the "whatsapp:" prefix); empty: no WhatsApp.
    whatsapp_sender = models.CharField(_("WhatsApp sender"), max_length=20, blank=True)
    # WhatsApp business-initiated messages need an approved content template: its content
    # SID per language ({"en": "HX…", "ru": "HX…"}); variables 1 = name, 2 = company,
    # 3 = answer link (notifications/sms.py, surveys/sms.py).
    whatsapp_templates = models.JSONField(_("WhatsApp templates"), default=dict, blank=True)
    # What each numbered variable of the templates carries ({"1": "name", ...}); empty: the
    # default mapping (companies.services.WHATSAPP_DEFAULT_VARIABLES).
    whatsapp_variables = models.JSONField(
        _("WhatsApp template variables"), default=dict, blank=True
    )
    # A company's own Twilio account instead of the platform's. The auth token is stored
    # encrypted (companies/credentials.py) and never shown again after saving.
    twilio_account_sid = models.CharField(_("Twilio account SID"), max_length=34, blank=True)
    twilio_auth_token_encrypted = models.TextField(blank=True, editable=False)
    # The recipient's local hours in which SMS may go out (a message due outside waits).
    quiet_hours_start = models.TimeField(_("send SMS from"), default=_default_quiet_start)
    quiet_hours_end = models.TimeField(_("send SMS until"), default=_default_quiet_end)
    # Data retention (nps_saas/retention.py): answers, threads, the delivery ledger and logs
    # older than this many months are anonymised or deleted by a daily job. NULL: kept forever.
    retention_months = models.PositiveSmallIntegerField(
        _("keep personal data for (months)"),
        null=True,
        blank=True,
        validators=[
            MinValueValidator(RETENTION_MIN_MONTHS),
            MaxValueValidator(RETENTION_MAX_MONTHS),
        ],
    )
    # Members without two-factor sign-in are sent to set it up before any of this company's
    # pages (companies.middleware.CompanyMiddleware); API keys are not affected.
    require_mfa = models.BooleanField(_("require two-factor sign-in for members"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint(
                fields=["sms_sender"],
                name="company_unique_sms_sender",
                condition=~models.Q(sms_sender=""),
            ),
            models.UniqueConstraint(
                fields=["whatsapp_sender"],
                name="company_unique_whatsapp_sender",
                condition=~models.Q(whatsapp_sender=""),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def sms_rate(self) -> float:
        """Messages per second for the company's sender (its own setting, else by kind)."""
        return self.sms_rate_per_second or SMS_DEFAULT_RATES.get(self.sms_sender_kind, 1.0)


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    AGENT = "agent", _("Agent")
    VIEWER = "viewer", _("Viewer")


# Higher rank can do everything a lower rank can. Agents work the inbox, managers run surveys.
ROLE_RANK: dict[str, int] = {
    Role.VIEWER: 0,
    Role.AGENT: 1,
    Role.MANAGER: 2,
    Role.ADMIN: 3,
    Role.OWNER: 4,
}


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[minimum]


class MembershipQuerySet(TenantQuerySet["Membership"]):
    def for_user(self, user: User) -> MembershipQuerySet:
        """A user's own memberships across companies (the company switcher)."""
        return self.unscoped(reason="a user sees their own memberships").filter(user=user)


class Membership(TenantModel):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    # Names a member in the team pages' URLs without exposing a sequential id.
    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("Person")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When the member put the overview's "Getting started" steps away (each teammate decides
    # for themselves); null: shown while the company has no responses.
    getting_started_hidden_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantManager.from_queryset(MembershipQuerySet)()  # type: ignore[misc]

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "user"], name="membership_unique_user"),
            models.UniqueConstraint(fields=["company", "public_id"], name="membership_public_id"),
        ]
        # Member lists page by (created_at, id) within a company: read in index order.
        indexes = [models.Index(fields=["company", "created_at", "id"], name="membership_by_age")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.company} ({self.role})"


class TeamInviteStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    ACCEPTED = "accepted", _("Accepted")
    REVOKED = "revoked", _("Revoked")
    EXPIRED = "expired", _("Expired")


class TeamInvite(TenantModel):
    """An invitation for a teammate to join a company with a role, by an emailed link."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="team_invites")
    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    email = models.EmailField(_("email address"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.VIEWER)
    # Only a hash of the emailed token is stored; a database leak gives no working links.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("Invited by")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("Expires"))
    accepted_at = models.DateTimeField(_("Accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("Accepted by"),
    )
    revoked_at = models.DateTimeField(_("Revoked"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="teaminvite_public_id"),
        ]
        indexes = [models.Index(fields=["company", "email"])]

    def __str__(self) -> str:
        return f"{self.email} → {self.company} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.status == TeamInviteStatus.PENDING

    @property
    def status(self) -> TeamInviteStatus:
        if self.accepted_at is not None:
            return TeamInviteStatus.ACCEPTED
        if self.revoked_at is not None:
            return TeamInviteStatus.REVOKED
        if self.expires_at <= timezone.now():
            return TeamInviteStatus.EXPIRED
        return TeamInviteStatus.PENDING


class ApiKey(TenantModel):
    """A company's API key. The full key is shown once; only its SHA-256 is kept."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="api_keys")
    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    name = models.CharField(_("name"), max_length=80)
    # Visible part of the key (``nps_<prefix>_…``): tells keys apart in lists and logs.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    role = models.CharField(
        _("access"),
        max_length=16,
        choices=[(Role.ADMIN, _("Full access")), (Role.VIEWER, _("Read only"))],
        default=Role.ADMIN,
    )
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("Created by")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("Last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("Revoked"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="apikey_public_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (nps_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RetentionRun(TenantModel):
    """One pass of a company's retention policy (nps_saas/retention.py): when, up to which
    cutoff, and how many rows of each kind it anonymised or deleted. Counts only, never data."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    months = models.PositiveSmallIntegerField()
    # Rows created before this moment were in scope.
    cutoff = models.DateTimeField()
    # {"responses_anonymised": 12, "deliveries_deleted": 40, ...}; only kinds with rows.
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["company", "started_at"], name="retentionrun_latest")]

    def __str__(self) -> str:
        return f"retention {self.company_id} @ {self.started_at:%Y-%m-%d %H:%M}"
