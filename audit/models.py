"""The audit log: who changed what, when, from where; one table, one row per change.

Our own small table rather than django-auditlog or django-pghistory (README, "Audit log"):
auditlog's ``LogEntry`` has no company and no fail-closed manager, and records from model
signals (so neither the actor of an API key nor a change made by ``.update()``); pghistory's
triggers need PostgreSQL, while the embedded default runs on SQLite.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.tenancy import TenantModel

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise


class AuditAction(models.TextChoices):
    """What happened. The values are stable (CSV and filters carry them)."""

    SURVEY_CREATED = "survey.created", _("Survey created")
    SURVEY_UPDATED = "survey.updated", _("Survey changed")
    SURVEY_STATUS_CHANGED = "survey.status_changed", _("Survey status changed")
    SURVEY_DELETED = "survey.deleted", _("Survey deleted")
    ALERT_RULE_CREATED = "alert_rule.created", _("Alert rule created")
    ALERT_RULE_UPDATED = "alert_rule.updated", _("Alert rule changed")
    ALERT_RULE_DELETED = "alert_rule.deleted", _("Alert rule deleted")
    MEMBER_JOINED = "member.joined", _("Member joined")
    MEMBER_ROLE_CHANGED = "member.role_changed", _("Member role changed")
    MEMBER_REMOVED = "member.removed", _("Member removed")
    TEAM_INVITE_CREATED = "team_invite.created", _("Teammate invited")
    TEAM_INVITE_REVOKED = "team_invite.revoked", _("Invitation revoked")
    API_KEY_CREATED = "api_key.created", _("API key created")
    API_KEY_REVOKED = "api_key.revoked", _("API key revoked")
    WEBHOOK_CREATED = "webhook_endpoint.created", _("Webhook endpoint created")
    WEBHOOK_UPDATED = "webhook_endpoint.updated", _("Webhook endpoint changed")
    WEBHOOK_SECRET_ROTATED = "webhook_endpoint.secret_rotated", _("Webhook secret rotated")
    WEBHOOK_DELETED = "webhook_endpoint.deleted", _("Webhook endpoint deleted")
    SETTINGS_UPDATED = "settings.updated", _("Company settings changed")
    SMS_SETTINGS_UPDATED = "settings.sms_updated", _("SMS settings changed")
    TWO_FACTOR_REQUIREMENT_CHANGED = (
        "settings.two_factor_changed",
        _("Two-factor sign-in requirement changed"),
    )
    SSO_CONNECTION_CREATED = "sso_connection.created", _("Single sign-on connection created")
    SSO_CONNECTION_UPDATED = "sso_connection.updated", _("Single sign-on connection changed")
    SSO_CONNECTION_ENABLED = "sso_connection.enabled", _("Single sign-on turned on")
    SSO_CONNECTION_DISABLED = "sso_connection.disabled", _("Single sign-on turned off")
    SSO_DOMAIN_ADDED = "sso_domain.added", _("Sign-on domain added")
    SSO_DOMAIN_VERIFIED = "sso_domain.verified", _("Sign-on domain verified")
    SSO_DOMAIN_REMOVED = "sso_domain.removed", _("Sign-on domain removed")
    WIDGET_SETTINGS_UPDATED = "widget.settings_updated", _("Widget settings changed")
    WIDGET_KEY_ROTATED = "widget.key_rotated", _("Widget key replaced")
    AUTOPILOT_CONFIGURED = "autopilot.configured", _("Recurring survey settings changed")
    API_KEY_SURVEY_BOUND = "api_key.survey_bound", _("API key's survey changed")
    DELIGHTED_IMPORT_STARTED = "delighted_import.started", _("Delighted import started")
    EXPORT_DOWNLOADED = "export.downloaded", _("Export downloaded")
    # For data subject rights (issue 16): never the person's identifier, only the kind.
    PERSON_EXPORTED = "person.exported", _("Personal data exported")
    PERSON_ERASED = "person.erased", _("Personal data erased")
    SIGNED_IN = "user.signed_in", _("Signed in")
    SIGN_IN_FAILED = "user.sign_in_failed", _("Failed sign-in")


class ActorKind(models.TextChoices):
    MEMBER = "member", _("Member")
    API_KEY = "api_key", _("API key")
    SYSTEM = "system", _("System")


class AuditEntry(TenantModel):
    """One change. ``actor_label`` and ``target_label`` are copies taken at the time, so the
    entry still reads right after the person, key or object is gone."""

    company = models.ForeignKey("companies.Company", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    action = models.CharField(max_length=48, choices=AuditAction.choices)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        "companies.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "companies.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=255, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    target_type = models.CharField(max_length=48, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    # {"field": [before, after]} for the fields that changed; secrets only as "changed".
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["company", "-created_at", "-id"], name="audit_by_time"),
            models.Index(fields=["company", "action", "-created_at"], name="audit_by_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label}: {self.action}"

    @property
    def target_type_label(self) -> str:
        return str(TARGET_TYPES.get(self.target_type, self.target_type))

    @property
    def change_rows(self) -> list[tuple[str, Any, Any]]:
        """The changes for people: each field's label in the reader's language (the field's
        ``verbose_name`` on the target's model), its value before and after. The CSV and the
        API keep the machine names."""
        model = _models_by_name().get(self.target_type)
        rows = []
        for name, pair in self.changes.items():
            before, after = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
            rows.append((_field_label(model, name), before, after))
        return rows


# What an entry is about (``AuditEntry.target_type``): model names, and the exports by kind.
TARGET_TYPES: dict[str, _StrPromise] = {
    "survey": _("Survey"),
    "alertrule": _("Alert rule"),
    "membership": _("Member"),
    "teaminvite": _("Teammate invitation"),
    "apikey": _("API key"),
    "webhookendpoint": _("Webhook endpoint"),
    "company": _("Company settings"),
    "dashboardsettings": _("Dashboard settings"),
    "inboxsettings": _("Inbox settings"),
    "user": _("Sign-in"),
    "ssoconnection": _("Single sign-on connection"),
    "ssodomain": _("Sign-on domain"),
    "widgetsettings": _("Widget settings"),
    "autopilotprogram": _("Recurring survey"),
    "delightedimport": _("Delighted import"),
    "person": _("Person (data subject)"),
    "responses": _("Responses export"),
    "trend": _("Trend export"),
    "audit_log": _("Audit log export"),
    "contact_import_errors": _("Contact import errors"),
    "delighted_import_errors": _("Delighted import errors"),
}


@cache
def _models_by_name() -> dict[str, type[models.Model]]:
    """Our models by ``model_name`` (what ``target_type`` holds for a model's entries)."""
    return {model._meta.model_name or "": model for model in apps.get_models()}


# Changes the services write under a name that is no field of the target's model.
CHANGE_LABELS: dict[str, _StrPromise] = {
    "survey": _("Survey"),
    "identifier_kind": _("Identified by"),
    "file": _("File"),
    "filters": _("Filters"),
}


def _field_label(model: type[models.Model] | None, name: str) -> str:
    if model is not None:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            pass
        else:
            label = getattr(field, "verbose_name", None)
            if label:
                return str(label)
    return str(CHANGE_LABELS.get(name, name))
