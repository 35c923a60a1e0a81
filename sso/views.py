"""Single sign-on pages: "Sign in with SSO" (public) and the company's settings (admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests
from allauth.account.utils import get_next_redirect_url
from allauth.socialaccount.providers.base.constants import AuthProcess
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from onelogin.saml2.errors import OneLogin_Saml2_Error

from companies.models import Role
from companies.permissions import company_view
from sso.adapters import provider_id_for, social_app_for
from sso.forms import SsoConnectionForm, SsoDomainForm, SsoStartForm
from sso.models import SsoConnection, SsoKind
from sso.selectors import (
    sso_connection_for_company_slug,
    sso_connection_for_email,
    sso_connection_get,
    sso_domain_get,
    sso_domains_list,
)
from sso.services import (
    sso_connection_save,
    sso_domain_add,
    sso_domain_remove,
    sso_domain_verify,
)

if TYPE_CHECKING:
    from companies.models import Company, Membership, User

    class CompanyRequest(HttpRequest):
        company: Company
        membership: Membership
        user: User
else:
    CompanyRequest = HttpRequest


@require_http_methods(["GET", "POST"])
def sso_start(request: HttpRequest) -> HttpResponse:
    """Find the IdP by work email (its verified domain) or company ID, and go there."""
    if request.method == "POST":
        form = SsoStartForm(request.POST)
    else:
        form = SsoStartForm(initial={"identifier": request.GET.get("email", "")})
    if request.method == "POST" and form.is_valid():
        identifier = form.cleaned_data["identifier"].strip()
        if "@" in identifier:
            connection = sso_connection_for_email(email=identifier)
        else:
            connection = sso_connection_for_company_slug(slug=identifier.lower())
        app = social_app_for(connection) if connection is not None else None
        if app is None:
            form.add_error(
                "identifier",
                _("Single sign-on is not set up for this email domain or company."),
            )
        else:
            provider = app.get_provider(request)
            try:
                to_idp = provider.redirect(
                    request, AuthProcess.LOGIN, next_url=get_next_redirect_url(request)
                )
            except (requests.RequestException, ValueError, KeyError, OneLogin_Saml2_Error):
                # OIDC discovery: unreachable, refused (a private address), or not JSON
                # with the endpoints we need; SAML: settings python3-saml refuses.
                form.add_error(
                    "identifier", _("Your company's identity provider could not be reached.")
                )
            else:
                return _continue_to(request, to_idp["Location"])
    return render(request, "sso/start.html", {"form": form})


def _continue_to(request: HttpRequest, url: str) -> HttpResponse:
    """Leave for the IdP by a refresh, not a redirect: our CSP's ``form-action 'self'``
    covers every redirect that answers a form, so browsers block a 302 to another origin
    after "Continue" is pressed. A refresh is a new navigation; the link is the fallback."""
    response = render(request, "sso/continue.html", {"url": url})
    response["Refresh"] = f"0;url={url}"
    response["Cache-Control"] = "no-store"
    return response


def _service_provider_details(request: HttpRequest, connection: SsoConnection) -> dict[str, str]:
    """What the company's IdP administrator needs to know about us."""
    provider_id = provider_id_for(connection)
    if connection.kind == SsoKind.OIDC:
        callback = reverse("openid_connect_callback", kwargs={"provider_id": provider_id})
        return {"redirect_uri": request.build_absolute_uri(callback)}
    return {
        "acs_url": request.build_absolute_uri(reverse("saml_acs", args=[provider_id])),
        "entity_id": request.build_absolute_uri(reverse("saml_metadata", args=[provider_id])),
    }


@company_view(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def sso_settings(request: CompanyRequest) -> HttpResponse:
    company = request.company
    connection = sso_connection_get(company=company)
    initial = {"kind": SsoKind.OIDC, "enabled": True, "default_role": Role.VIEWER}
    if connection is not None:
        initial = {
            name: getattr(connection, name)
            for name in SsoConnectionForm.base_fields
            if hasattr(connection, name)
        }
    form = SsoConnectionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sso_connection_save(company=company, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Single sign-on settings saved."))
            return redirect("sso:settings", company_slug=company.slug)
    return render(
        request,
        "sso/settings.html",
        {
            "form": form,
            "connection": connection,
            "has_secret": bool(connection and connection.oidc_client_secret_encrypted),
            "details": _service_provider_details(request, connection) if connection else {},
            "domains": sso_domains_list(company=company),
            "domain_form": SsoDomainForm(),
            "login_url": request.build_absolute_uri(reverse("sso_start")),
        },
    )


@company_view(Role.ADMIN)
@require_POST
def sso_domain_add_view(request: CompanyRequest) -> HttpResponse:
    company = request.company
    form = SsoDomainForm(request.POST)
    if form.is_valid():
        try:
            domain = sso_domain_add(company=company, domain=form.cleaned_data["domain"])
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                for error in errors:
                    messages.error(request, error)
        else:
            messages.success(
                request,
                _("Publish the TXT record below at %(domain)s, then verify it.")
                % {"domain": domain.domain},
            )
    else:
        messages.error(request, _("Enter a domain such as example.com."))
    return redirect("sso:settings", company_slug=company.slug)


@company_view(Role.ADMIN)
@require_POST
def sso_domain_verify_view(request: CompanyRequest, sso_domain_id: str) -> HttpResponse:
    company = request.company
    domain = sso_domain_get(company=company, public_id=sso_domain_id)
    if domain is None:
        raise Http404("No such domain")
    try:
        sso_domain_verify(company=company, domain=domain)
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    else:
        messages.success(request, _("%(domain)s is verified.") % {"domain": domain.domain})
    return redirect("sso:settings", company_slug=company.slug)


@company_view(Role.ADMIN)
@require_POST
def sso_domain_remove_view(request: CompanyRequest, sso_domain_id: str) -> HttpResponse:
    company = request.company
    domain = sso_domain_get(company=company, public_id=sso_domain_id)
    if domain is None:
        raise Http404("No such domain")
    sso_domain_remove(company=company, domain=domain)
    messages.success(request, _("%(domain)s was removed.") % {"domain": domain.domain})
    return redirect("sso:settings", company_slug=company.slug)
