"""The digest settings page under /c/<company_slug>/dashboard/digest/.

Any member (viewer and up) sets their own digest: frequency, day, local hour and time zone.
Admins also manage the company's extra addresses (people without an account).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from companies.models import Company, Membership, Role, role_at_least
from companies.permissions import company_view
from companies.zones import zone_choices
from dashboards.digests import (
    digest_address_delete,
    digest_address_save,
    digest_addresses,
    digest_subscription_of,
    digest_subscription_save,
)
from dashboards.models import DigestFrequency, Weekday

HOUR_CHOICES = [(h, f"{h:02d}:00") for h in range(24)]


class DigestScheduleForm(forms.Form):
    frequency = forms.ChoiceField(
        label=gettext_lazy("Send me a digest"), choices=DigestFrequency.choices
    )
    weekday = forms.TypedChoiceField(
        label=gettext_lazy("On (weekly)"), choices=Weekday.choices, coerce=int, initial=0
    )
    hour = forms.TypedChoiceField(
        label=gettext_lazy("At (local time)"), choices=HOUR_CHOICES, coerce=int, initial=8
    )


class DigestSubscriptionForm(DigestScheduleForm):
    time_zone = forms.ChoiceField(
        label=gettext_lazy("My time zone"),
        required=False,
        help_text=gettext_lazy("Leave it on the company's time zone if you work there."),
    )

    def __init__(self, *args: object, company_zone: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        company_choice = _("The company's (%(zone)s)") % {"zone": company_zone}
        current = str(self.initial.get("time_zone") or "")
        field.choices = [("", company_choice), *zone_choices(current=current)]


class DigestAddressForm(DigestScheduleForm):
    email = forms.EmailField(label=gettext_lazy("Email address"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Someone else's digest: not "Send me a digest".
        self.fields["frequency"].label = gettext_lazy("Send this address a digest")
        self.order_fields(["email", "frequency", "weekday", "hour"])


def _company(request: HttpRequest) -> Company:
    company: Company = request.company  # type: ignore[attr-defined]
    return company


def _membership(request: HttpRequest) -> Membership:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    return membership


def _to_page(company: Company) -> HttpResponse:
    return redirect("dashboards:digest", company_slug=company.slug)


@company_view(Role.VIEWER)
def digest_settings(request: HttpRequest) -> HttpResponse:
    """The member's own digest (every member may change theirs) and, for admins, the
    company's extra addresses."""
    company = _company(request)
    membership = _membership(request)
    current = digest_subscription_of(company=company, membership=membership)
    form = DigestSubscriptionForm(
        request.POST or None,
        company_zone=company.time_zone,
        initial={
            "frequency": current.frequency,
            "weekday": current.weekday,
            "hour": current.hour,
            "time_zone": membership.user.time_zone,
        },
    )
    if request.method == "POST" and form.is_valid():
        digest_subscription_save(
            company=company,
            membership=membership,
            frequency=form.cleaned_data["frequency"],
            weekday=form.cleaned_data["weekday"],
            hour=form.cleaned_data["hour"],
            time_zone=form.cleaned_data["time_zone"],
        )
        messages.success(request, _("Digest settings saved."))
        return _to_page(company)
    is_admin = role_at_least(membership.role, Role.ADMIN)
    context = {
        "form": form,
        "subscription": current,
        "addresses": digest_addresses(company=company) if is_admin else [],
        "address_form": DigestAddressForm() if is_admin else None,
    }
    return render(request, "dashboards/digest_settings.html", context)


@require_POST
@company_view(Role.ADMIN)
def digest_address_add_view(request: HttpRequest) -> HttpResponse:
    """Add an extra address (or change the schedule of one the company has)."""
    company = _company(request)
    form = DigestAddressForm(request.POST)
    if form.is_valid():
        digest_address_save(
            company=company,
            email=form.cleaned_data["email"],
            frequency=form.cleaned_data["frequency"],
            weekday=form.cleaned_data["weekday"],
            hour=form.cleaned_data["hour"],
        )
        messages.success(request, _("Digest address saved."))
    else:
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        messages.error(request, " ".join(errors))
    return _to_page(company)


@require_POST
@company_view(Role.ADMIN)
def digest_address_delete_view(request: HttpRequest, digest_address_id: str) -> HttpResponse:
    company = _company(request)
    if not digest_address_delete(company=company, public_id=digest_address_id):
        raise Http404
    messages.success(request, _("Digest address removed."))
    return _to_page(company)
