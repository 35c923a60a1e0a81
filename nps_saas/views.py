from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from companies.middleware import LAST_COMPANY_SESSION_KEY
from companies.models import User
from companies.selectors import memberships_of_user
from companies.services import user_set_language


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


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, which also remembers the choice on a logged-in account."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if isinstance(request.user, User) and response.cookies.get(settings.LANGUAGE_COOKIE_NAME):
        user_set_language(user=request.user, language=language)
    return response
