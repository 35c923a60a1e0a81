"""A survey's recurring programme under /c/<company_slug>/surveys/<survey_id>/recurring/:
its settings per channel, its members (paginated), adding a segment, removing a member.

Everyone in the company may look (viewer); managers and above change it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy
from django.views.decorators.http import require_POST

from companies.models import Role, role_at_least
from companies.permissions import company_view
from surveys.forms import AudienceForm
from surveys.models import (
    AUTOPILOT_CADENCES,
    AUTOPILOT_MAX_FIRST_DELAY_DAYS,
    AutopilotChannel,
    Survey,
)
from surveys.selectors import (
    autopilot_joins_recent,
    autopilot_members_list,
    autopilot_programs,
    contact_get,
    survey_get,
)
from surveys.services.autopilot import (
    autopilot_configure,
    autopilot_member_remove,
    autopilot_members_add_audience,
)

if TYPE_CHECKING:
    from companies.models import Company, Membership, User

    class CompanyRequest(HttpRequest):
        company: Company
        membership: Membership
        user: User
else:
    CompanyRequest = HttpRequest

MEMBERS_PAGE_SIZE = 50


class ProgramForm(forms.Form):
    active = forms.BooleanField(
        label=gettext_lazy("On: ask the members again and again"), required=False
    )
    cadence_days = forms.TypedChoiceField(
        label=gettext_lazy("Ask again every"),
        coerce=int,
        choices=[
            (days, ngettext_lazy("%(days)d day", "%(days)d days", "days") % {"days": days})
            for days in AUTOPILOT_CADENCES
        ],
        initial=90,
    )
    first_delay_days = forms.IntegerField(
        label=gettext_lazy("First ask after (days)"),
        min_value=0,
        max_value=AUTOPILOT_MAX_FIRST_DELAY_DAYS,
        initial=0,
        help_text=gettext_lazy("0: the first ask goes out as soon as a contact joins."),
    )


def _survey_or_404(request: CompanyRequest, survey_id: str) -> Survey:
    survey = survey_get(company=request.company, public_id=survey_id)
    if survey is None:
        raise Http404(_("No such survey."))
    return survey


def _channel(value: str | None) -> str:
    return value if value in AutopilotChannel.values else AutopilotChannel.EMAIL.value


def _page_url(request: CompanyRequest, survey: Survey, channel: str, **params: str) -> str:
    url = reverse(
        "surveys:autopilot",
        kwargs={"company_slug": request.company.slug, "survey_id": survey.public_id},
    )
    return f"{url}?{urlencode({'channel': channel, **params})}"


def _cursor_encode(pk: int) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> int | None:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


@company_view(Role.VIEWER, write_role=Role.MANAGER)
def autopilot_settings(request: CompanyRequest, survey_id: str) -> HttpResponse:
    """The programme of one channel (``?channel=email|sms``): settings (POST saves them),
    members 50 a page in join order (two queries per page, whatever the page), add a
    segment."""
    company = request.company
    survey = _survey_or_404(request, survey_id)
    channel = _channel(request.POST.get("channel") or request.GET.get("channel"))
    programs = autopilot_programs(company=company, survey=survey)
    program = programs.get(channel)
    initial = (
        {
            "active": program.active,
            "cadence_days": program.cadence_days,
            "first_delay_days": program.first_delay_days,
        }
        if program is not None
        else None
    )
    form = ProgramForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            autopilot_configure(
                company=company, survey=survey, channel=channel, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Recurring survey saved."))
            return redirect(_page_url(request, survey, channel))
    members: list[Any] = []
    joins: list[Any] = []
    next_url = None
    cursor = request.GET.get("after", "")
    if program is not None:
        joins = autopilot_joins_recent(company=company, program=program)
        after = _cursor_decode(cursor) if cursor else None
        members = list(
            autopilot_members_list(company=company, survey=survey, channel=channel, after_id=after)[
                : MEMBERS_PAGE_SIZE + 1
            ]
        )
        if len(members) > MEMBERS_PAGE_SIZE:
            members = members[:MEMBERS_PAGE_SIZE]
            next_url = _page_url(request, survey, channel, after=_cursor_encode(members[-1].pk))
    membership = request.membership
    context = {
        "survey": survey,
        "channel": channel,
        "channels": [
            (value, label, programs.get(value)) for value, label in AutopilotChannel.choices
        ],
        "program": program,
        "form": form,
        "audience_form": AudienceForm(company=company),
        "members": members,
        "joins": joins,
        "next_url": next_url,
        "first_page_url": _page_url(request, survey, channel) if cursor else None,
        "can_manage": membership is not None and role_at_least(membership.role, Role.MANAGER),
    }
    return render(request, "surveys/autopilot.html", context, status=400 if form.errors else 200)


@company_view(Role.MANAGER)
@require_POST
def autopilot_members_add(request: CompanyRequest, survey_id: str) -> HttpResponse:
    """Add every contact of a segment (all, or property filters) to the channel's programme."""
    company = request.company
    survey = _survey_or_404(request, survey_id)
    channel = _channel(request.POST.get("channel"))
    program = autopilot_programs(company=company, survey=survey).get(channel)
    form = AudienceForm(request.POST, company=company)
    if program is None:
        messages.error(request, _("Save the recurring survey's settings first."))
    elif not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    else:
        try:
            autopilot_members_add_audience(
                company=company,
                program=program,
                audience=form.cleaned_data["audience_value"],
                created_by=request.user,
            )
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(
                request,
                _("The segment's contacts are being added: they appear in the list shortly."),
            )
    return redirect(_page_url(request, survey, channel))


@company_view(Role.MANAGER)
@require_POST
def autopilot_member_remove_view(request: CompanyRequest, survey_id: str) -> HttpResponse:
    """Take one contact (``contact``: its public id) out of the channel's programme."""
    company = request.company
    survey = _survey_or_404(request, survey_id)
    channel = _channel(request.POST.get("channel"))
    contact = contact_get(company=company, public_id=str(request.POST.get("contact", "")))
    removed = False
    if contact is not None:
        try:
            removed = autopilot_member_remove(
                company=company, survey=survey, channel=channel, contact=contact
            )
        except ValidationError:  # no programme on that channel: nobody to remove
            removed = False
    if removed:
        messages.success(request, _("%(name)s left the recurring survey.") % {"name": contact})
    else:
        messages.error(request, _("This contact is not a member."))
    return redirect(_page_url(request, survey, channel))
