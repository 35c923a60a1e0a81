from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from companies.models import Role
from companies.permissions import company_view
from companies.selectors import members_list


@company_view(Role.VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    """The company's front page until dashboards arrive: where to start."""
    company = request.company  # type: ignore[attr-defined]
    return render(
        request,
        "companies/overview.html",
        {"member_count": members_list(company=company).count()},
    )
