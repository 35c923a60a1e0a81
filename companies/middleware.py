"""The web app's tenancy choke point: ``/c/<company_slug>/…`` plus a membership check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from companies import rls
from companies.api_base import error_body
from companies.models import role_at_least
from companies.permissions import role_needed
from companies.selectors import membership_for, user_has_two_factor
from companies.text import UNSTORABLE_MESSAGE, is_storable
from companies.zones import company_zone

LAST_COMPANY_SESSION_KEY = "nps_company"
# Where a member sent to set up two-factor sign-in was going: {"path", "company" (its name),
# "slug"}; dropped once they reach that company.
MFA_RETURN_SESSION_KEY = "nps_mfa_return"
# Paths whose errors are JSON (companies.api_base's shape), not HTML pages: the REST API and
# Delighted's API (delighted_compat), whose clients cannot read a page.
API_PATH_PREFIXES = ("/api/", "/v1/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


class StorableTextMiddleware:
    """Refuse, before any view runs a query, what would only fail inside the database.

    * a path or query parameter holding NUL or an unpaired surrogate (``companies.text``):
      400 with the parameter as the field (API) or a 400 page (web);
    * an API body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (file uploads aside): 413 in the
      API's error shape, without reading it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self._refusal(request) or self.get_response(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        api = is_api_path(request.path_info)
        fields: dict[str, list[str]] = {}
        if not is_storable(request.path_info):
            fields["path"] = [str(UNSTORABLE_MESSAGE)]
        for name, values in request.GET.lists():
            if not all(is_storable(value) for value in (name, *values)):
                fields[name if is_storable(name) else "query"] = [str(UNSTORABLE_MESSAGE)]
        if fields:
            if api:
                body = error_body(400, "invalid", _("Some fields are invalid."), fields)
                return JsonResponse(body, status=400)
            return HttpResponseBadRequest(render_to_string("400.html"))
        if api and self._body_too_large(request):
            body = error_body(413, "too_large", _("The request body is too large."))
            return JsonResponse(body, status=413)
        return None

    @staticmethod
    def _body_too_large(request: HttpRequest) -> bool:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None or request.content_type == "multipart/form-data":
            return False
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        return length > limit


class CompanyMiddleware:
    """Resolve ``request.company`` and ``request.membership`` for company URLs.

    Anonymous → login; not a member → 404 (another company's pages do not exist for you);
    a member below the view's declared role → 403; a member without two-factor sign-in in a
    company that requires it → the page that sets it up. Every time on a company's pages is shown
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
        rls.activate_company(membership.company_id)
        if membership.company.require_mfa and not user_has_two_factor(user=request.user):
            # Only this company's pages: the same person's other companies stay open. The
            # account pages offer the way back once it is set up (allauth/layouts/manage.html).
            request.session[MFA_RETURN_SESSION_KEY] = {
                "path": request.get_full_path() if request.method == "GET" else f"/c/{slug}/",
                "company": membership.company.name,
                "slug": slug,
            }
            messages.warning(
                request,
                _(
                    "%(company)s requires two-factor sign-in. Set up an authenticator app or "
                    "a passkey to open its pages."
                )
                % {"company": membership.company.name},
            )
            return redirect("mfa_index")
        if request.session.get(MFA_RETURN_SESSION_KEY, {}).get("slug") == slug:
            del request.session[MFA_RETURN_SESSION_KEY]  # arrived: the way back is not needed
        request.company = membership.company  # type: ignore[attr-defined]
        request.membership = membership  # type: ignore[attr-defined]
        timezone.activate(company_zone(membership.company))
        request.session[LAST_COMPANY_SESSION_KEY] = slug
        return None
