"""The web app's tenancy choke point: ``/c/<company_slug>/…`` plus a membership check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone

from companies.models import role_at_least
from companies.permissions import role_needed
from companies.selectors import membership_for
from companies.zones import company_zone

LAST_COMPANY_SESSION_KEY = "nps_company"


class CompanyMiddleware:
    """Resolve ``request.company`` and ``request.membership`` for company URLs.

    Anonymous → login; not a member → 404 (another company's pages do not exist for you);
    a member below the view's declared role → 403. Every time on a company's pages is shown
    in the company's time zone (Django's date filters convert to the active zone).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.company = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if "company_slug" not in view_kwargs:
            return None
        slug = view_kwargs.pop("company_slug")
        required = role_needed(view_func, request.method or "GET")
        if required is None:
            raise ImproperlyConfigured(
                f"{view_func.__module__}.{view_func.__name__} serves a company URL but declares "
                "no role: decorate it with companies.permissions.company_view"
            )
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_for(user=request.user, company_slug=slug)
        if membership is None:
            raise Http404("No such company")
        if not role_at_least(membership.role, required):
            raise PermissionDenied
        request.company = membership.company  # type: ignore[attr-defined]
        request.membership = membership  # type: ignore[attr-defined]
        timezone.activate(company_zone(membership.company))
        request.session[LAST_COMPANY_SESSION_KEY] = slug
        return None
