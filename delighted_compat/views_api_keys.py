"""The web page of Delighted's API: its base URL, and which survey each API key acts on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from companies.models import Role
from companies.permissions import company_view
from companies.selectors import api_key_get, api_keys_list
from delighted_compat.api.services import api_key_bind_survey
from delighted_compat.models import ApiKeySurvey, DefaultApiSurvey
from surveys.selectors import survey_get, surveys_list

if TYPE_CHECKING:
    from companies.models import Company, Membership, User

    class CompanyRequest(HttpRequest):
        """What the middlewares guarantee on a company page (for the type checker only)."""

        company: Company
        membership: Membership
        user: User
else:
    CompanyRequest = HttpRequest


@company_view(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def delighted_api_keys(request: CompanyRequest) -> HttpResponse:
    """GET: the keys and their surveys; POST ``key`` + ``survey`` (blank: the default one)."""
    company = request.company
    error = ""
    if request.method == "POST":
        api_key = api_key_get(company=company, public_id=request.POST.get("key", ""))
        survey_id = request.POST.get("survey", "").strip()
        survey = survey_get(company=company, public_id=survey_id) if survey_id else None
        if api_key is None or not api_key.is_active:
            error = _("Choose one of the keys below.")
        elif survey_id and survey is None:
            error = _("Choose one of your surveys.")
    if request.method == "POST" and not error:
        assert api_key is not None
        api_key_bind_survey(company=company, api_key=api_key, survey=survey)
        messages.success(
            request,
            _("The key “%(name)s” now acts on %(survey)s in Delighted's API.")
            % {
                "name": api_key.name,
                "survey": survey.name if survey else _("the default survey"),
            },
        )
        return redirect("delighted_api_keys", company_slug=company.slug)
    bound = {
        row.api_key_id: row.survey.public_id
        for row in ApiKeySurvey.objects.for_company(company).select_related("survey")
    }
    default = DefaultApiSurvey.objects.for_company(company).select_related("survey").first()
    keys = [(key, bound.get(key.pk, "")) for key in api_keys_list(company=company) if key.is_active]
    return render(
        request,
        "delighted_compat/api_keys.html",
        {
            "keys": keys,
            "surveys": surveys_list(company=company, include_archived=False),
            "default_survey": default.survey if default else None,
            "base_url": settings.SITE_URL.rstrip("/") + "/v1/",
            "error": error,
        },
        status=400 if error else 200,
    )
