"""What the Delighted compatibility keeps.

* For the API at ``/v1/``: which survey a key's calls act on. A Delighted "project" is one of
  our surveys. A key bound to a survey (``ApiKeySurvey``) acts on that survey; a company key
  without one acts on the company's default survey for this API (``DefaultApiSurvey``),
  created on first use. Both rows live here, above surveys and companies, so that neither of
  those apps learns about Delighted.
* For the importer: each uploaded export file (``DelightedImport``), and the link from an
  imported answer to Delighted's own response id (``DelightedResponse``, the key that makes a
  re-run change nothing).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from companies.models import new_public_id
from companies.tenancy import TenantModel


class ExportKind(models.TextChoices):
    RESPONSES = "responses", _("Survey responses")
    PEOPLE = "people", _("People")
    UNSUBSCRIBES = "unsubscribes", _("Unsubscribed people")
    BOUNCES = "bounces", _("Bounced people")


class DelightedImportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for you to check the columns")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


def _upload_to(instance: DelightedImport, filename: str) -> str:
    # Never the uploader's file name (it may hold anything).
    return f"delighted_imports/{instance.company_id}/{new_public_id()}.upload"


def _report_to(instance: DelightedImport, filename: str) -> str:
    return f"delighted_imports/{instance.company_id}/{new_public_id()}-errors.csv"


class DelightedImport(TenantModel):
    """One Delighted export file (responses, people, unsubscribes or bounces) and its fate.

    Files uploaded together share a ``batch``. ``mapping`` maps each header to a target of the
    file's kind (``delighted_compat.importer.TARGETS``), ``property:<key>`` or ``ignore``.
    ``errors`` keeps the first rejected rows (``{"line", "column", "reason"}``); the full list,
    each original row plus the reason, is ``error_report`` (CSV, formula-escaped).
    """

    public_id = models.CharField(max_length=32, default=new_public_id, editable=False)
    batch = models.CharField(max_length=32, db_index=True)
    kind = models.CharField(_("Kind"), max_length=16, choices=ExportKind.choices, blank=True)
    survey = models.ForeignKey(
        "surveys.Survey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("Survey"),
    )
    file = models.FileField(upload_to=_upload_to, max_length=255)
    file_name = models.CharField(max_length=255)
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16,
        choices=DelightedImportStatus.choices,
        default=DelightedImportStatus.PENDING,
    )
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    error_report = models.FileField(upload_to=_report_to, max_length=255, blank=True)
    failure = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "public_id"], name="delighted_import_public_id"
            ),
        ]
        indexes = [
            models.Index(fields=["company", "created_at"], name="delighted_import_by_age"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.kind or '?'}, {self.status})"


class DelightedResponse(TenantModel):
    """An answer imported from Delighted: its Delighted id (or, when the export had none, a
    hash of the row's person, time and score), with what our Response has no column for."""

    response = models.OneToOneField(
        "responses.Response", on_delete=models.CASCADE, related_name="delighted"
    )
    delighted_id = models.CharField(max_length=80)
    person_id = models.CharField(max_length=80, blank=True)
    tags = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    permalink = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "delighted_id"], name="delighted_response_id"
            ),
        ]

    def __str__(self) -> str:
        return f"Delighted response {self.delighted_id}"


class ApiKeySurvey(TenantModel):
    """The survey an API key's ``/v1/`` calls act on (its Delighted "project")."""

    api_key = models.OneToOneField(
        "companies.ApiKey", on_delete=models.CASCADE, related_name="delighted_survey"
    )
    survey = models.ForeignKey("surveys.Survey", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.api_key} → {self.survey}"


class DefaultApiSurvey(TenantModel):
    """The survey a company's unbound keys act on through ``/v1/`` (one per company)."""

    survey = models.ForeignKey("surveys.Survey", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company"], name="delighted_default_survey_company")
        ]

    def __str__(self) -> str:
        return f"{self.company_id} → {self.survey}"
