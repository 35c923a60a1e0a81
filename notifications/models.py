from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id


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
