"""A survey's widget page under /c/<company_slug>/surveys/<survey_id>/widget/: the one-line
script tag to copy, and the widget's settings. Managers and above; the identity secret is
shown to admins and owners only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from companies.models import Role, role_at_least
from companies.permissions import company_view
from responses.services import link_secret
from surveys.models import Survey
from surveys.selectors import survey_get
from widget.forms import WidgetSettingsForm
from widget.services import widget_key_rotate, widget_settings_for, widget_settings_update
from widget.views_public import script_version

if TYPE_CHECKING:
    from companies.models import Company, Membership, User

    class CompanyRequest(HttpRequest):
        company: Company
        membership: Membership
        user: User
else:
    CompanyRequest = HttpRequest


def _survey_or_404(request: CompanyRequest, survey_id: str) -> Survey:
    survey = survey_get(company=request.company, public_id=survey_id)
    if survey is None:
        raise Http404("No such survey")
    return survey


def snippet(key: str) -> str:
    """The one line a customer pastes into their pages (our public address, as in emails)."""
    src = settings.SITE_URL + reverse("widget-script") + f"?v={script_version()}"
    return f'<script async src="{src}" data-key="{key}"></script>'


@company_view(Role.MANAGER)
def widget_settings(request: CompanyRequest, survey_id: str) -> HttpResponse:
    company = request.company
    survey = _survey_or_404(request, survey_id)
    widget = widget_settings_for(company=company, survey=survey)
    form = WidgetSettingsForm(request.POST or None, instance=widget)
    if request.method == "POST" and form.is_valid():
        try:
            widget_settings_update(company=company, survey=survey, **form.service_fields())
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Widget settings saved."))
            return redirect(request.path)
    is_admin = role_at_least(request.membership.role, Role.ADMIN)
    return render(
        request,
        "widget/settings.html",
        {
            "company": company,
            "survey": survey,
            "widget": widget,
            "form": form,
            "snippet": snippet(widget.publishable_key),
            "secret": link_secret(company=company) if is_admin else "",
        },
    )


@require_POST
@company_view(Role.MANAGER)
def widget_rotate(request: CompanyRequest, survey_id: str) -> HttpResponse:
    survey = _survey_or_404(request, survey_id)
    widget_key_rotate(company=request.company, survey=survey)
    messages.success(request, _("New key: replace the script tag on your pages."))
    return redirect("widget:settings", company_slug=request.company.slug, survey_id=survey_id)
