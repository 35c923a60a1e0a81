from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_ordered_public_id, new_public_id
from companies.tenancy import TenantModel
from notifications.models import Channel

LANGUAGE_CHOICES = settings.SURVEY_LANGUAGES


class SurveyKind(models.TextChoices):
    NPS = "nps", _("Customer NPS")
    ENPS = "enps", _("Employee NPS")


class SurveyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    ARCHIVED = "archived", _("Archived")


class ScaleStyle(models.TextChoices):
    COLORED = "colored", _("Coloured (red to green)")
    NEUTRAL = "neutral", _("Neutral")


class Survey(TenantModel):
    """An NPS (or eNPS) survey: wording per language, branding and sending rules.

    ``texts`` holds the wording per language, ``{"en": {"question": …, "why_promoter": …,
    "why_passive": …, "why_detractor": …, "thanks": …}, "ru": {…}, "kk": {…}}``; a missing or
    blank entry falls back to the defaults in ``surveys/defaults.py``. ``{company}`` in a text
    is replaced by the company's name.

    ``extra_questions`` (at most five, all optional, shown after the comment) is a list of
    ``{"id": str, "kind": "choice"|"text", "text": {lang: str}, "choices": [{lang: str}, …]}``.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(
        _("kind"), max_length=8, choices=SurveyKind.choices, default=SurveyKind.NPS
    )
    # eNPS surveys are anonymous: respondents are never shown, small segments hidden.
    anonymous = models.BooleanField(_("anonymous"), default=False)
    status = models.CharField(
        _("status"), max_length=16, choices=SurveyStatus.choices, default=SurveyStatus.DRAFT
    )
    default_language = models.CharField(
        _("default language"), max_length=8, choices=LANGUAGE_CHOICES, default="en"
    )
    texts = models.JSONField(_("wording"), default=dict, blank=True)
    extra_questions = models.JSONField(_("extra questions"), default=list, blank=True)
    logo_url = models.URLField(_("logo URL"), blank=True)
    # Shown on the thank-you page to promoters only (a review site, a referral programme).
    promoter_link_url = models.URLField(_("review or referral link"), max_length=500, blank=True)
    accent_color = models.CharField(_("accent colour"), max_length=7, default="#4f46e5")
    scale_style = models.CharField(
        _("scale"), max_length=16, choices=ScaleStyle.choices, default=ScaleStyle.COLORED
    )
    throttle_days = models.PositiveSmallIntegerField(
        _("do not survey the same person again within (days)"),
        default=90,
        validators=[MaxValueValidator(3650)],
    )
    sample_percent = models.PositiveSmallIntegerField(
        # The "%" is literal: without this, xgettext flags python-format and
        # msgfmt rejects translations that put other text after the "%".
        # xgettext:no-python-format
        _("sample (% of the audience)"),
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    reminder_after_days = models.PositiveSmallIntegerField(
        _("remind after (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("One reminder to those who have not answered. Empty: no reminder."),
    )
    link_valid_days = models.PositiveSmallIntegerField(
        _("answer links valid for (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("Created by"),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="survey_public_id"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def list_label(self) -> str:
        """The name in filter lists, an archived survey marked as such."""
        if self.status == SurveyStatus.ARCHIVED:
            return str(_("%(name)s (archived)") % {"name": self.name})
        return self.name


class Contact(TenantModel):
    """A person a company can survey. ``properties`` feed audience filters and segments."""

    # Without the foreign key's own index: every index below starts with company, and each
    # index costs a bulk import (1M rows) about a tenth of its time.
    company = models.ForeignKey(
        "companies.Company", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Ordered by creation (new_ordered_public_ids): bulk imports append to its index.
    public_id = models.CharField(max_length=32, default=new_ordered_public_id, editable=False)
    email = models.EmailField(_("email"), null=True, blank=True)  # noqa: DJ001 (NULL = none; unique when set)
    phone = models.CharField(_("phone"), max_length=20, null=True, blank=True)  # noqa: DJ001 (NULL = none; unique when set)
    name = models.CharField(_("name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=LANGUAGE_CHOICES, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    external_id = models.CharField(_("external id"), max_length=128, null=True, blank=True)  # noqa: DJ001 (NULL = none; unique when set)
    # key → string / number / bool
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="contact_public_id"),
            models.UniqueConstraint(
                fields=["company", "email"],
                name="contact_unique_email",
                condition=models.Q(email__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["company", "external_id"],
                name="contact_unique_external_id",
                condition=models.Q(external_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(email__isnull=False) | models.Q(phone__isnull=False),
                name="contact_has_an_address",
            ),
        ]
        indexes = [
            # Phone lookups are always by value: contacts without one need no entry.
            models.Index(
                fields=["company", "phone"],
                name="contact_phone",
                condition=models.Q(phone__isnull=False),
            ),
            models.Index(fields=["company", "created_at", "id"], name="contact_by_age"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or self.public_id


class CampaignStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    EXPANDING = "expanding", _("Preparing")
    SENDING = "sending", _("Sending")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class CampaignChannel(models.TextChoices):
    """A campaign's channel: one for everyone, or each contact's preferred one."""

    EMAIL = Channel.EMAIL.value, Channel.EMAIL.label
    SMS = Channel.SMS.value, Channel.SMS.label
    WHATSAPP = Channel.WHATSAPP.value, Channel.WHATSAPP.label
    # The contact's ``preferred_channel`` property (email, sms or whatsapp) when the contact
    # has that address, else email when it has one, else SMS.
    PREFERRED = "preferred", _("Each contact's preferred channel")


class Campaign(TenantModel):
    """A send of a survey to an audience, now or at a time.

    ``audience`` is ``{"all": true}`` or ``{"filters": [{"property": k, "op": "eq"|…,
    "value": v}, …]}``. Expansion into invitations runs in chunks and resumes from
    ``expanded_through`` (the last contact id done), so a crashed expansion continues
    instead of starting over.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(_("name"), max_length=120, blank=True)
    channel = models.CharField(
        max_length=16, choices=CampaignChannel.choices, default=CampaignChannel.EMAIL
    )
    audience = models.JSONField(default=dict)
    scheduled_for = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.SCHEDULED
    )
    expanded_through = models.BigIntegerField(default=0)
    targeted = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    throttled = models.PositiveIntegerField(default=0)
    sampled_out = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The expansion's last progress (claimed, a chunk written): an expansion that makes none
    # for a while lost its worker or its message and is woken again (surveys/services/dispatch.py).
    progressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="campaign_public_id"),
        ]
        indexes = [
            models.Index(
                fields=["scheduled_for"],
                name="campaign_due",
                condition=models.Q(status__in=["scheduled", "expanding"]),
            )
        ]

    def __str__(self) -> str:
        return self.name or f"{self.survey} @ {self.scheduled_for:%Y-%m-%d %H:%M}"


class InvitationStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")  # waits in the database for its time
    QUEUED = "queued", _("Queued")  # handed to a send task
    SENDING = "sending", _("Sending")  # claimed by a send task
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Suppressed")
    THROTTLED = "throttled", _("Throttled")
    CANCELLED = "cancelled", _("Cancelled")


class Invitation(TenantModel):
    """One survey sent to one contact on one channel; carries the answer link's token.

    Only ``token_hash`` (SHA-256 of the link token) is stored. The token itself is derived
    from ``token_nonce`` with the server's secret (surveys/tokens.py), so that a reminder can
    send the same link again while a copy of the database alone opens nothing.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="invitations")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    language = models.CharField(max_length=8, choices=LANGUAGE_CHOICES, default="en")
    token_nonce = models.CharField(max_length=32, editable=False)
    # Unique by the constraint below, not unique=True: that would add a second (LIKE) index,
    # which every invitation written would keep up to date for no query.
    token_hash = models.CharField(max_length=64, editable=False)
    # Text-message invitations only: the hash of the short token their SMS carries.
    short_token_hash = models.CharField(  # noqa: DJ001 (NULL = none; unique when set)
        max_length=64, null=True, blank=True, editable=False
    )
    status = models.CharField(
        max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.SCHEDULED
    )
    scheduled_for = models.DateTimeField(default=timezone.now)
    # Properties sent with the invitation (transactional trigger): kept for segments.
    properties = models.JSONField(default=dict, blank=True)
    delivery = models.ForeignKey(
        "notifications.Delivery",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    failed_reason = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="invitation_public_id"),
            models.UniqueConstraint(fields=["token_hash"], name="invitation_token_hash"),
            models.UniqueConstraint(
                fields=["short_token_hash"],
                name="invitation_short_token",
                condition=models.Q(short_token_hash__isnull=False),
            ),
        ]
        indexes = [
            # The dispatcher's scan: only rows still waiting are indexed.
            models.Index(
                fields=["scheduled_for"],
                name="invitation_due",
                condition=models.Q(status="scheduled"),
            ),
            # The stale sweep: rows in flight, by when they last moved (services:
            # invitations_sweep_stale).
            models.Index(
                fields=["updated_at"],
                name="invitation_in_flight",
                condition=models.Q(status__in=["queued", "sending"]),
            ),
            # Throttle window: when was this contact last surveyed?
            models.Index(fields=["company", "contact", "sent_at"], name="invitation_contact_sent"),
            models.Index(fields=["company", "survey", "created_at"], name="invitation_survey"),
            models.Index(fields=["company", "campaign", "status"], name="invitation_campaign"),
        ]

    def __str__(self) -> str:
        return f"{self.survey} → {self.contact} ({self.status})"


class InvitationEvent(TenantModel):
    """The invitation's timeline: scheduled, sent, delivered, opened, clicked, answered…"""

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=32)
    detail = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["company", "invitation", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.event} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ImportStatus(models.TextChoices):
    # Stored, waiting for a worker to read its header (the web request never parses it).
    READING = "reading", _("Reading the file")
    PENDING = "pending", _("Waiting for the column mapping")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


def _import_upload_to(instance: ContactImport, filename: str) -> str:
    # The stored name never reuses the uploader's file name (it may hold anything).
    suffix = ".xlsx" if filename.lower().endswith(".xlsx") else ".csv"
    return f"contact-imports/{instance.company_id}/{instance.public_id}{suffix}"


def _import_report_to(instance: ContactImport, filename: str) -> str:
    return f"contact-imports/{instance.company_id}/{instance.public_id}-errors.csv"


class ContactImport(TenantModel):
    """One upload of contacts (CSV or XLSX) and what became of it.

    ``mapping`` maps each column header of the file to ``email``, ``phone``, ``name``,
    ``language``, ``time_zone``, ``external_id``, ``property:<key>`` or ``ignore``. ``errors``
    holds the first invalid rows (``{"line", "column", "reason"}``) for a quick look; the
    full list, each original row plus an ``error`` column, is ``error_report`` (CSV).

    Statuses: ``reading`` (stored; a worker reads the header, the suggested mapping and
    ``samples``), ``pending`` (waiting for the mapping), ``running``, ``done`` or ``failed``.
    ``auto_start``: import as soon as the header is read, with ``mapping`` as asked (the API,
    which takes the mapping with the file; an empty one means the suggestion).
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    file = models.FileField(upload_to=_import_upload_to, max_length=255)
    file_name = models.CharField(_("file name"), max_length=255)
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    # Header → its first few values (the mapping screen), read by the worker with the header.
    samples = models.JSONField(default=dict, blank=True)
    auto_start = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    rows_total = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    error_report = models.FileField(upload_to=_import_report_to, max_length=255, blank=True)
    failure = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Handed to a worker (status reading or running) at; started_at: claimed by the worker.
    # Reading or running and never claimed for a while: its message was lost, and the stale
    # sweep wakes it again.
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="contact_import_public_id"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "created_at"], name="contact_import_by_age"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"


# --- Recurring surveys (Autopilot) ------------------------------------------------------------


class AutopilotChannel(models.TextChoices):
    """The channels a recurring programme asks on (Delighted's Autopilot "platforms")."""

    EMAIL = Channel.EMAIL.value, Channel.EMAIL.label
    SMS = Channel.SMS.value, Channel.SMS.label


# Every N days: the cadences offered (Delighted's Autopilot offered the same).
AUTOPILOT_CADENCES = (30, 60, 90, 180, 365)
AUTOPILOT_MAX_FIRST_DELAY_DAYS = 365


class AutopilotProgram(TenantModel):
    """A survey's recurring programme on one channel: each member is asked every
    ``cadence_days``, the first time ``first_delay_days`` after joining.

    Nothing runs per member until it is due: each member row carries its next ask
    (``AutopilotMember.next_ask_at``), which the dispatcher picks up through a partial index
    (surveys/services/autopilot.py). Off (``active`` false) or a survey that is not active:
    members wait, and are asked when both are on again.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="+", verbose_name=_("Survey")
    )
    channel = models.CharField(_("channel"), max_length=16, choices=AutopilotChannel.choices)
    active = models.BooleanField(_("on"), default=False)
    cadence_days = models.PositiveSmallIntegerField(
        _("ask again every (days)"),
        choices=[(days, str(days)) for days in AUTOPILOT_CADENCES],
        default=90,
    )
    first_delay_days = models.PositiveSmallIntegerField(
        _("first ask after (days)"),
        default=0,
        validators=[MaxValueValidator(AUTOPILOT_MAX_FIRST_DELAY_DAYS)],
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="autopilot_program_public_id"
            ),
            models.UniqueConstraint(
                fields=["company", "survey", "channel"], name="autopilot_program_per_channel"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.survey} · {self.channel} every {self.cadence_days} days"


class AutopilotStop(models.TextChoices):
    """Why a member is no longer asked (it stays listed until removed)."""

    SUPPRESSED = "suppressed", _("Unsubscribed or unreachable")


class AutopilotMember(TenantModel):
    """A contact in a recurring programme, with the properties its asks carry.

    ``next_ask_at``: when the dispatcher asks next; NULL once stopped (``stopped``).
    ``last_invitation``: the latest ask (a removal cancels it while it still waits).
    """

    # Without the foreign key's own index: the indexes below start with company or program.
    company = models.ForeignKey(
        "companies.Company", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    program = models.ForeignKey(
        AutopilotProgram, on_delete=models.CASCADE, related_name="members", db_index=False
    )
    # Deleting the contact deletes its memberships: that stops the programme for it (the
    # foreign key's own index serves that cascade and the unsubscribe lookup).
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    next_ask_at = models.DateTimeField(null=True, blank=True)
    last_asked_at = models.DateTimeField(null=True, blank=True)
    last_invitation = models.ForeignKey(
        Invitation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stopped = models.CharField(max_length=16, choices=AutopilotStop.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="autopilot_member_public_id"
            ),
            models.UniqueConstraint(
                fields=["company", "program", "contact"], name="autopilot_member_unique"
            ),
        ]
        indexes = [
            # The dispatcher's scan, per programme in time order: only members still asked.
            models.Index(
                fields=["program", "next_ask_at"],
                name="autopilot_member_due",
                condition=models.Q(next_ask_at__isnull=False),
            ),
            # The members list (and the API's cursor): a programme's members in join order;
            # also the deletion of a programme's members.
            models.Index(fields=["program", "id"], name="autopilot_member_list"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.program_id}"


class AutopilotJoin(TenantModel):
    """Contacts joining a programme in bulk: a segment (``audience``, as a campaign's) or
    the contacts of an import (``contact_import``: those it wrote, once it has finished).

    Done by a worker chunk by chunk in contact id order, resuming after ``after`` (the last
    contact id done), so a segment of a million contacts never holds a web request and a
    crashed run continues where it stopped; the counts say what became of the contacts.
    """

    program = models.ForeignKey(AutopilotProgram, on_delete=models.CASCADE, related_name="+")
    audience = models.JSONField(null=True, blank=True)
    contact_import = models.ForeignKey(
        ContactImport, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    after = models.BigIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    added = models.PositiveIntegerField(default=0)
    already = models.PositiveIntegerField(default=0)
    no_address = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(audience__isnull=False) | models.Q(contact_import__isnull=False),
                name="autopilot_join_has_a_source",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="autopilot_join_pending",
                condition=models.Q(done_at__isnull=True),
            ),
            models.Index(fields=["company", "program", "created_at"], name="autopilot_join_recent"),
        ]

    def __str__(self) -> str:
        source = f"import {self.contact_import_id}" if self.contact_import_id else "segment"
        return f"{source} → {self.program_id}"
