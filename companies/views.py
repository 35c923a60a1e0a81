"""Company pages under /c/<company_slug>/: the overview and the company's settings."""

from __future__ import annotations

import copy

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from companies.forms import CompanySettingsForm
from companies.models import Role
from companies.permissions import company_view
from companies.selectors import members_list
from companies.services import company_update


@company_view(Role.VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    """The company's front page until dashboards arrive: where to start."""
    company = request.company  # type: ignore[attr-defined]
    return render(
        request,
        "companies/overview.html",
        {
            "member_count": members_list(company=company).count(),
            # The embedded default keeps mail in /dev/outbox/: say where sent surveys go.
            "dev_outbox": settings.DEV_OUTBOX_ENABLED,
        },
    )


@company_view(Role.ADMIN)
def company_settings(request: HttpRequest) -> HttpResponse:
    """Name, industry, locale and sender identity of the company (admins and owners)."""
    company = request.company  # type: ignore[attr-defined]
    # The form validates against a copy: a rejected edit must not leak into the page's header,
    # which shows request.company.
    form = CompanySettingsForm(request.POST or None, instance=copy.copy(company))
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            company_update(company=company, **changed)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Company settings saved."))
            return redirect("companies:settings", company_slug=company.slug)
    return render(request, "companies/settings.html", {"form": form})
