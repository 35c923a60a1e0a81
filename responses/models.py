from __future__ import annotations

import functools

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, override
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel
from notifications.models import Channel


class Category(models.TextChoices):
    PROMOTER = "promoter", _("Promoter")
    PASSIVE = "passive", _("Passive")
    DETRACTOR = "detractor", _("Detractor")


def category_of(score: int) -> str:
    """Promoter 9–10, passive 7–8, detractor 0–6 (design §4)."""
    if score >= 9:
        return Category.PROMOTER
    if score >= 7:
        return Category.PASSIVE
    return Category.DETRACTOR


class ResponseChannel(models.TextChoices):
    EMAIL = Channel.EMAIL.value, Channel.EMAIL.label
    SMS = Channel.SMS.value, Channel.SMS.label
    WHATSAPP = Channel.WHATSAPP.value, Channel.WHATSAPP.label
    LINK = "link", _("Web link")
    WIDGET = "widget", _("Web widget")


# Response.owed_event: the webhook event an answer still owes.
OWED_CREATED = "created"
OWED_UPDATED = "updated"


class Response(TenantModel):
    """One answer: at most one per invitation (database-enforced); answering again updates it.

    Web-link answers have no invitation and, unless identified, no contact; one per browser
    (``browser_key``: a hash of a cookie) per survey.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    survey = models.ForeignKey("surveys.Survey", on_delete=models.CASCADE, related_name="responses")
    invitation = models.ForeignKey(
        "surveys.Invitation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="responses",
    )
    contact = models.ForeignKey(
        "surveys.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="responses",
    )
    score = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    category = models.CharField(max_length=16, choices=Category.choices)
    comment = models.TextField(blank=True)
    extra_answers = models.JSONField(default=dict, blank=True)
    channel = models.CharField(max_length=16, choices=ResponseChannel.choices)
    language = models.CharField(max_length=8, choices=settings.SURVEY_LANGUAGES, default="en")
    # Snapshots taken when the answer arrives, so later edits of the contact don't move
    # old answers between segments.
    contact_properties = models.JSONField(default=dict, blank=True)
    invitation_properties = models.JSONField(default=dict, blank=True)
    browser_key = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001 (NULL = none; unique when set)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # What this answer still owes (responses/effects.py), written with the answer itself:
    # its webhook event ("created" or "updated") and its alert evaluation, due at
    # ``owed_at`` (the save; a worker paying it moves it ahead by its lease). NULL: nothing
    # owed.
    owed_event = models.CharField(max_length=8, blank=True, default="")
    owed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="response_public_id"),
            # One response per invitation; composite with the company like every key here.
            models.UniqueConstraint(
                fields=["company", "invitation"],
                name="response_one_per_invitation",
                condition=models.Q(invitation__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["company", "survey", "browser_key"],
                name="response_one_per_browser",
                condition=models.Q(browser_key__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0, score__lte=10), name="response_score_0_10"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "survey", "created_at"], name="response_survey_time"),
            models.Index(fields=["company", "created_at", "id"], name="response_by_age"),
            models.Index(fields=["company", "updated_at", "id"], name="response_by_update"),
            models.Index(
                fields=["owed_at"],
                name="response_owed",
                condition=models.Q(owed_at__isnull=False),
            ),
            # The latest comments (dashboard, digests, verbatims): most answers have none, so
            # walking back through every answer to find a few would grow with the traffic.
            models.Index(
                fields=["company", "created_at"],
                name="response_with_comment",
                condition=~models.Q(comment=""),
            ),
            # A contact's answers, latest first: their history on contact and follow-up pages,
            # their latest answer for revenue at risk.
            models.Index(
                fields=["company", "contact", "created_at"],
                name="response_by_contact",
                condition=models.Q(contact__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.score} ({self.category})"


# --- Alert rules, the alert ledger and follow-ups (the triage inbox) ---------------------------


# The name of the rule a new company starts with. Stored in English and shown in the reader's
# language while it is unchanged (a team may read several languages); a renamed rule is shown
# as written.
DEFAULT_RULE_NAME = gettext_noop("Every detractor")


@functools.cache
def _default_rule_names() -> frozenset[str]:
    """The default name in every interface language (companies made before it was stored in
    English have it in the language of their sign-up)."""
    names = {DEFAULT_RULE_NAME}
    for code, _label in settings.LANGUAGES:
        with override(code):
            names.add(gettext(DEFAULT_RULE_NAME))
    return frozenset(names)


def rule_name_display(name: str) -> str:
    """A rule's name for people: the default name in the active language, others as written."""
    return gettext(DEFAULT_RULE_NAME) if name in _default_rule_names() else name


class AlertRule(TenantModel):
    """When a response matches every condition set here, the actions run (once per response).

    Conditions left empty match everything. ``words`` match case- and language-insensitively
    (see ``responses.alerts.normalize_text``): a whole word, or a prefix when it ends in ``*``.
    Contact conditions (property, first response) never match an anonymous survey's answers:
    an alert must not single out a respondent who was promised anonymity.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    name = models.CharField(_("name"), max_length=120)
    enabled = models.BooleanField(_("enabled"), default=True)
    # None: every survey of the company.
    survey = models.ForeignKey(
        "surveys.Survey",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_rules",
        verbose_name=_("survey"),
    )
    # --- conditions
    category = models.CharField(_("category"), max_length=16, choices=Category.choices, blank=True)
    score_min = models.PositiveSmallIntegerField(
        _("lowest score"), null=True, blank=True, validators=[MaxValueValidator(10)]
    )
    score_max = models.PositiveSmallIntegerField(
        _("highest score"), null=True, blank=True, validators=[MaxValueValidator(10)]
    )
    words = models.JSONField(_("comment contains any of"), default=list, blank=True)
    property_key = models.CharField(_("contact property"), max_length=64, blank=True)
    property_value = models.CharField(_("equals"), max_length=255, blank=True)
    first_response_only = models.BooleanField(_("first response of a contact"), default=False)
    # --- actions
    email_roles = models.JSONField(_("email members with these roles"), default=list, blank=True)
    # Membership public ids (a JSON list keeps every row of the rule carrying its company).
    email_member_ids = models.JSONField(_("email these members"), default=list, blank=True)
    email_addresses = models.JSONField(_("email these addresses"), default=list, blank=True)
    create_followup = models.BooleanField(_("create a follow-up"), default=True)
    # Delivered through notifications.webhooks (responses/webhook_events.py), once per firing.
    notify_slack = models.BooleanField(_("post to Slack"), default=False)
    slack_webhook_url = models.URLField(_("Slack incoming-webhook URL"), blank=True)
    notify_webhook = models.BooleanField(_("send an outbound webhook event"), default=False)
    # The rule a new company starts with (every detractor: a follow-up and an email to agents).
    is_default = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("Updated"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="alertrule_public_id"),
            models.CheckConstraint(
                condition=models.Q(score_min__isnull=True)
                | models.Q(score_max__isnull=True)
                | models.Q(score_min__lte=models.F("score_max")),
                name="alertrule_score_range",
            ),
        ]
        indexes = [models.Index(fields=["company", "enabled"], name="alertrule_enabled")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return rule_name_display(self.name) if self.is_default else self.name


class AlertFiring(TenantModel):
    """The alert ledger: one row per (rule, response), ever. The unique constraint is what
    makes an alert go out at most once, whatever the number of edits or racing workers.

    ``email_status`` is claimed (pending → sending) before the emails go out, so a task
    redelivered after a crash sends what was left, and never twice.
    """

    class EmailStatus(models.TextChoices):
        NONE = "none", _("No email")
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="alert_firings")
    score = models.PositiveSmallIntegerField()  # at the moment the alert fired
    email_status = models.CharField(
        max_length=16, choices=EmailStatus.choices, default=EmailStatus.NONE
    )
    # {address: Delivery id} of an attempt the post office asked to retry: a retry reuses
    # these rows, so an address already sent to is never sent to again.
    deliveries = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField(default=timezone.now)
    # When the emails were last claimed (pending → sending) or woken by the sweep: a claim
    # older than the sweep's lease belongs to a worker that died (responses/effects.py).
    email_woken_at = models.DateTimeField(null=True, blank=True)
    # The emails wait until then for the respondent's comment (an alert fired on a score
    # alone); the comment landing moves it to now. NULL: not waiting.
    email_not_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "rule", "response"], name="alertfiring_once_per_rule"
            ),
        ]
        indexes = [
            models.Index(
                fields=["company", "response"],
                name="alertfiring_pending",
                condition=models.Q(email_status="pending"),
            ),
            models.Index(
                fields=["fired_at"],
                name="alertfiring_unsent",
                condition=models.Q(email_status__in=["pending", "sending"]),
            ),
        ]


class InboxSettings(TenantModel):
    """Per company: the follow-up SLA and assignment. A company without a row uses defaults
    (``settings.FOLLOWUP_SLA_HOURS``, round-robin on), so reading never has to create one."""

    company = models.OneToOneField("companies.Company", on_delete=models.CASCADE, related_name="+")
    # None: settings.FOLLOWUP_SLA_HOURS (so a changed default reaches every such company).
    sla_hours = models.PositiveSmallIntegerField(
        _("answer within (hours)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
    )
    round_robin = models.BooleanField(
        _("assign new follow-ups round-robin to agents"), default=True
    )
    # The agent's membership that got the last round-robin follow-up.
    last_assigned = models.ForeignKey(
        "companies.Membership",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("Last assigned"),
    )


class FollowupStatus(models.TextChoices):
    NEW = "new", _("New")
    IN_PROGRESS = "in_progress", _("In progress")
    WAITING = "waiting", _("Waiting on customer")
    RESOLVED = "resolved", _("Resolved")


OPEN_STATUSES = (FollowupStatus.NEW, FollowupStatus.IN_PROGRESS, FollowupStatus.WAITING)


class ResolutionReason(models.TextChoices):
    CONTACTED = "contacted", _("Talked to the customer")
    FIXED = "fixed", _("Problem fixed")
    NO_ACTION = "no_action", _("No action needed")
    UNREACHABLE = "unreachable", _("Could not reach the customer")
    OTHER = "other", _("Other")


class Followup(TenantModel):
    """The inbox item for an alerted response: at most one per response (database-enforced).

    ``score`` and ``survey`` are copies of the response's, for the inbox filters and its
    indexes; ``seen_score`` / ``seen_comment`` are what the thread last recorded of the
    answer, so that a later edit becomes an event instead of a new alert.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="followups")
    survey = models.ForeignKey("surveys.Survey", on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField()
    seen_comment = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=FollowupStatus.choices, default=FollowupStatus.NEW
    )
    resolution = models.CharField(
        _("resolution"), max_length=16, choices=ResolutionReason.choices, blank=True
    )
    assignee = models.ForeignKey(
        "companies.Membership",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
    )
    due_at = models.DateTimeField()
    overdue_at = models.DateTimeField(null=True, blank=True)  # marked by the escalation sweep
    escalated_at = models.DateTimeField(null=True, blank=True)  # admins emailed (once)
    first_reply_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the reply-to token (responses/followups_replies.py); set at the first reply.
    reply_key_hash = models.CharField(max_length=64, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="followup_public_id"),
            models.UniqueConstraint(
                fields=["company", "response"], name="followup_one_per_response"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="resolved") | ~models.Q(resolution=""),
                name="followup_resolved_has_reason",
            ),
            # Inbound replies find their thread by this hash, across companies.
            models.UniqueConstraint(
                fields=["reply_key_hash"],
                name="followup_reply_key",
                condition=~models.Q(reply_key_hash=""),
            ),
        ]
        indexes = [
            models.Index(fields=["company", "status", "created_at"], name="followup_by_status"),
            models.Index(fields=["company", "assignee", "status"], name="followup_by_assignee"),
            models.Index(
                fields=["due_at"],
                name="followup_open_due",
                condition=models.Q(status__in=["new", "in_progress", "waiting"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status != FollowupStatus.RESOLVED

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()


class FollowupEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    ALERT = "alert", _("Rule matched")
    NOTE = "note", _("Internal note")
    REPLY = "reply", _("Reply to the customer")
    CUSTOMER_REPLY = "customer_reply", _("The customer replied")
    STATUS = "status", _("Status changed")
    ASSIGNED = "assigned", _("Assignee changed")
    ANSWER_CHANGED = "answer_changed", _("Answer changed")
    OVERDUE = "overdue", _("Overdue")


class FollowupEvent(TenantModel):
    """The thread of a follow-up: notes and every change, with who (None: the system) and when."""

    followup = models.ForeignKey(Followup, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=FollowupEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["company", "followup", "created_at"], name="followupevent_thread")
        ]
