"""The record of each export or erasure of a person's data: who, when, what kind; never the
identifier or any of the data (an erasure record that kept the address would undo it)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel


class RequestKind(models.TextChoices):
    EXPORT = "export", _("Export")
    ERASURE = "erasure", _("Erasure")


class IdentifierKind(models.TextChoices):
    EMAIL = "email", _("Email address")
    PHONE = "phone", _("Phone number")
    EXTERNAL_ID = "external_id", _("External id")
    # Delighted's person id (``DELETE /v1/people/{id}``): our contact's public id.
    PERSON_ID = "person_id", _("Person id")


class RequestVia(models.TextChoices):
    WEB = "web", _("Web app")
    API = "api", _("API")
    DELIGHTED_API = "delighted_api", _("Delighted API")


class PersonalDataRequest(TenantModel):
    """One export or erasure, done. ``counts`` holds how many rows of each kind were found
    (export) or erased (erasure): numbers only."""

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    identifier_kind = models.CharField(max_length=16, choices=IdentifierKind.choices)
    via = models.CharField(max_length=16, choices=RequestVia.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "companies.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="personaldatarequest_public_id"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "created_at"], name="personaldatarequest_by_age")
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.identifier_kind} @ {self.created_at:%Y-%m-%d %H:%M}"
