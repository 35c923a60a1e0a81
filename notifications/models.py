from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel


class OutboxChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")


class OutboxMessage(models.Model):
    """A message the embedded default "sent": stored here instead of reaching anyone.

    Not tenant data: the development outbox is a system tool of the embedded default (one
    developer, one machine), shown at ``/dev/outbox/`` to whoever runs it, like a local mail
    catcher. It has no company and uses a plain manager on purpose; production never writes
    to it (``EMAIL_PROVIDER=outbox`` is refused there) and its pages 404 outside the embedded
    default.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_public_id, editable=False)
    channel = models.CharField(max_length=16, choices=OutboxChannel.choices)
    # A list of addresses for email, one phone number (a string) for SMS/WhatsApp.
    to = models.JSONField(default=list)
    subject = models.TextField(blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.channel} to {self.to_display}: {self.subject or self.text[:40]}"

    @property
    def to_display(self) -> str:
        return self.to if isinstance(self.to, str) else ", ".join(map(str, self.to))


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Marked as spam")
    STOPPED = "stopped", _("Replied STOP")
    MANUAL = "manual", _("Added by the company")


class Suppression(TenantModel):
    """An address the company must never message again on that channel.

    ``address`` is normalised: lower-case email, or E.164 phone number.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=254)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "channel", "address"], name="suppression_unique_address"
            ),
            models.UniqueConstraint(fields=["company", "public_id"], name="suppression_public_id"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address} ({self.reason})"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Complained")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Suppressed")
    # The provider may or may not have taken it, and cannot tell: never sent again by itself.
    UNKNOWN = "unknown", _("Outcome unknown")


class Delivery(TenantModel):
    """The delivery ledger: one row per message, written BEFORE the provider is called.

    ``metadata`` carries the caller's ids (e.g. ``{"invitation": "<public id>"}``) back in
    signals; the post office itself knows nothing about surveys.
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    provider = models.CharField(max_length=32, blank=True)
    # Indexed by Meta.indexes, not db_index=True: that would add a second (LIKE) index.
    provider_message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The provider call this row last went out in (random, in the message's metadata as
    # ``nps_call``): how an unknown outcome is looked up at the provider.
    call_ref = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "public_id"], name="delivery_public_id"),
        ]
        indexes = [
            models.Index(
                fields=["status", "created_at"],
                name="delivery_pending",
                condition=models.Q(status__in=["queued", "sending"]),
            ),
            # Provider webhooks name the message by the provider's id.
            models.Index(fields=["provider_message_id"], name="delivery_provider_message"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to} ({self.status})"


class DeliveryEvent(TenantModel):
    """What the provider told us about a delivery (webhooks, status callbacks)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=32)  # anymail's event_type or Twilio's status
    occurred_at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["company", "delivery", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.event} @ {self.occurred_at:%Y-%m-%d %H:%M}"


# Outbound webhooks and Slack posts live in their own module; Django finds models here.
from notifications.webhooks_models import (  # noqa: E402, F401
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
