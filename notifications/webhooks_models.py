"""Outbound webhooks: a company's endpoints, the messages queued for them, and every attempt.

Imported by ``notifications.models`` (Django finds an app's models there). Slack posts of
alert rules travel as messages too (``kind="slack"``, no endpoint, no signature), so they
share the ledger, the claim-before-send and the retry schedule.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel


def new_message_id() -> str:
    """The ``webhook-id`` of a message: the same on every retry, so receivers can dedupe."""
    return "msg_" + secrets.token_urlsafe(18)


class WebhookEventType(models.TextChoices):
    RESPONSE_CREATED = "response.created", _("A response arrived")
    RESPONSE_UPDATED = "response.updated", _("A response was changed")
    FOLLOWUP_CREATED = "followup.created", _("A follow-up was opened")
    FOLLOWUP_UPDATED = "followup.updated", _("A follow-up changed status or assignee")
    CONTACT_UNSUBSCRIBED = "contact.unsubscribed", _("A contact unsubscribed")
    ALERT_TRIGGERED = "alert.triggered", _("An alert rule fired (rules with the webhook action)")


# Not subscribable: sent only by the "send test event" button, to that one endpoint.
PING_EVENT = "ping"


class PayloadFormat(models.TextChoices):
    """How an endpoint's requests look: our envelope signed the Standard Webhooks way, or
    Delighted's (``event_type``/``event_id``/``event_data``, ``X-Delighted-Webhook-Signature``)
    so that receivers written for Delighted keep working."""

    STANDARD = "standard", _("Standard Webhooks")
    DELIGHTED = "delighted", _("Delighted")


# The events a Delighted-format endpoint can receive, and Delighted's names for them.
DELIGHTED_EVENT_TYPES: dict[str, str] = {
    WebhookEventType.RESPONSE_CREATED: "survey_response.created",
    WebhookEventType.RESPONSE_UPDATED: "survey_response.updated",
    WebhookEventType.CONTACT_UNSUBSCRIBED: "unsubscribe.created",
}


class DisabledReason(models.TextChoices):
    NONE = "", _("Enabled")
    MANUAL = "manual", _("Disabled by an admin")
    FAILING = "failing", _("Disabled after failing for a day")
    GONE = "gone", _("Disabled: the endpoint answered 410 Gone")


class WebhookEndpoint(TenantModel):
    """A URL of the company's that receives the events it subscribed to, signed with its
    secret (Standard Webhooks, or Delighted's scheme: ``payload_format``). The secret is
    stored encrypted (companies.credentials)."""

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("events"), default=list)
    payload_format = models.CharField(
        _("payload format"),
        max_length=16,
        choices=PayloadFormat.choices,
        default=PayloadFormat.STANDARD,
    )
    secret_encrypted = models.TextField(editable=False)
    enabled = models.BooleanField(_("Enabled"), default=True)
    disabled_reason = models.CharField(
        _("Why it was turned off"),
        max_length=16,
        choices=DisabledReason.choices,
        blank=True,
        default=DisabledReason.NONE,
    )
    disabled_at = models.DateTimeField(_("Turned off"), null=True, blank=True)
    # The first failed attempt since the last success; None while it works.
    failing_since = models.DateTimeField(_("Failing since"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("Updated"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="webhookendpoint_public_id"
            ),
        ]
        indexes = [models.Index(fields=["company", "enabled"], name="webhookendpoint_enabled")]

    def __str__(self) -> str:
        return self.url


class MessageKind(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    SLACK = "slack", _("Slack")


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookMessage(TenantModel):
    """One event for one destination: written before any attempt, claimed (pending →
    sending) before each one; ``next_attempt_at`` is when a pending message is due."""

    public_id = models.CharField(max_length=40, default=new_message_id, editable=False)
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    # Slack: the incoming-webhook URL at the time of the alert (endpoints use endpoint.url).
    url = models.URLField(max_length=2000, blank=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="webhookmessage_public_id"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhookmessage_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["claimed_at"],
                name="webhookmessage_sending",
                condition=models.Q(status="sending"),
            ),
            models.Index(fields=["company", "endpoint", "created_at"], name="webhookmessage_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.public_id} ({self.status})"


class WebhookAttempt(TenantModel):
    """One HTTP request of a message: the delivery log."""

    message = models.ForeignKey(
        WebhookMessage, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["company", "message", "number"], name="webhookattempt_by_message")
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"
