"""What Delighted's API at ``/v1/`` needs to remember: which survey a key's calls act on.

A Delighted "project" is one of our surveys. A key bound to a survey (``ApiKeySurvey``) acts
on that survey; a company key without one acts on the company's default survey for this API
(``DefaultApiSurvey``), created on first use. Both rows live here, above surveys and
companies, so that neither of those apps learns about Delighted.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from companies.tenancy import TenantModel


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
