from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from companies.middleware import LAST_COMPANY_SESSION_KEY
from companies.selectors import memberships_of_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a user to the company they used last, or let them pick one."""
    memberships = list(memberships_of_user(user=request.user))  # type: ignore[arg-type]
    last = request.session.get(LAST_COMPANY_SESSION_KEY)
    slugs = [m.company.slug for m in memberships]
    if last in slugs:
        return redirect("companies:overview", company_slug=last)
    if len(memberships) == 1:
        return redirect("companies:overview", company_slug=slugs[0])
    return render(request, "companies/choose.html", {"choices": memberships})
