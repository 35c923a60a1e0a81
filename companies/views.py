"""Company pages under /c/<company_slug>/: the overview and the company's settings."""

from __future__ import annotations

import copy

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from companies.forms import (
    CompanySecurityForm,
    CompanySettingsForm,
    CompanySmsSettingsForm,
    CompanyTwilioAccountForm,
)
from companies.models import Role
from companies.permissions import company_view
from companies.retention import retention_run_counts, retention_run_latest
from companies.selectors import members_list, user_has_two_factor
from companies.services import (
    company_sms_update,
    company_twilio_account_set,
    company_two_factor_requirement_set,
    company_update,
    membership_getting_started_set,
)


@company_view(Role.VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    """The company's front page: the getting-started steps, or where to go once answers arrive."""
    company = request.company  # type: ignore[attr-defined]
    return render(
        request,
        "companies/overview.html",
        {
            "member_count": members_list(company=company).count(),
        },
    )


@company_view(Role.VIEWER)
@require_POST
def getting_started_toggle(request: HttpRequest) -> HttpResponse:
    """Hide the overview's "Getting started" steps for this member (``hidden=1``) or bring
    them back (``hidden=0``); each teammate decides for themselves."""
    company = request.company  # type: ignore[attr-defined]
    hidden = request.POST.get("hidden") != "0"
    membership_getting_started_set(
        company=company,
        membership=request.membership,  # type: ignore[attr-defined]
        hidden=hidden,
    )
    if hidden:
        messages.success(
            request, _("Getting started is hidden. Bring it back from the overview at any time.")
        )
    return redirect("companies:overview", company_slug=company.slug)


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
    run = retention_run_latest(company=company)
    return render(
        request,
        "companies/settings.html",
        {
            "form": form,
            "retention_run": run,
            "retention_counts": retention_run_counts(run=run) if run else [],
        },
    )


@company_view(Role.ADMIN)
def company_security_settings(request: HttpRequest) -> HttpResponse:
    """Sign-in security: whether members must use two-factor sign-in (admins and owners).

    An admin without two-factor sign-in who turns the requirement on is sent to set it up
    first (the requirement would otherwise shut them out of this very page).
    """
    company = request.company  # type: ignore[attr-defined]
    has_two_factor = user_has_two_factor(user=request.user)  # type: ignore[arg-type]
    posted = request.POST if request.method == "POST" else None
    form = CompanySecurityForm(posted, initial={"require_mfa": company.require_mfa})
    if request.method == "POST" and form.is_valid():
        required = form.cleaned_data["require_mfa"]
        if required and not has_two_factor:
            messages.info(
                request,
                _(
                    "Set up two-factor sign-in for your own account first, then come back to "
                    "require it of your team."
                ),
            )
            return redirect("mfa_index")
        try:
            company_two_factor_requirement_set(
                company=company,
                required=required,
                actor=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(request, _("Sign-in security saved."))
            return redirect("companies:security-settings", company_slug=company.slug)
    return render(
        request,
        "companies/security_settings.html",
        {"form": form, "has_two_factor": has_two_factor},
    )


@company_view(Role.ADMIN)
def company_sms_settings(request: HttpRequest) -> HttpResponse:
    """SMS and WhatsApp: the sender, its throughput, quiet hours, WhatsApp templates and an
    optional own Twilio account (admins). Two forms, told apart by the submit button."""
    company = request.company  # type: ignore[attr-defined]
    posted = request.POST if request.method == "POST" else None
    saving_account = posted is not None and "save_account" in posted
    form = CompanySmsSettingsForm(None if saving_account else posted, instance=copy.copy(company))
    account_form = CompanyTwilioAccountForm(
        posted if saving_account else None,
        initial={"twilio_account_sid": company.twilio_account_sid},
    )
    if posted is not None and not saving_account and form.is_valid():
        try:
            company_sms_update(company=company, **form.changes())
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("SMS settings saved."))
            return redirect("companies:sms-settings", company_slug=company.slug)
    if saving_account and account_form.is_valid():
        try:
            company_twilio_account_set(
                company=company,
                account_sid=account_form.cleaned_data["twilio_account_sid"],
                auth_token=account_form.cleaned_data["twilio_auth_token"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                account_form.add_error(field if field in account_form.fields else None, errors)
        else:
            messages.success(request, _("Twilio account saved."))
            return redirect("companies:sms-settings", company_slug=company.slug)
    return render(
        request,
        "companies/sms_settings.html",
        {
            "form": form,
            "account_form": account_form,
            "has_own_account": bool(company.twilio_account_sid),
            "dev_outbox": settings.DEV_OUTBOX_ENABLED,
        },
    )
