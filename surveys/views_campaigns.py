"""Campaign pages under /c/<company_slug>/surveys/: send a survey, list and follow campaigns."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from companies.models import Company, Role, new_public_id
from companies.permissions import company_view
from surveys.forms import AudienceForm
from surveys.models import Campaign, Survey
from surveys.selectors import (
    campaign_get,
    campaign_progress,
    campaigns_list,
    survey_get,
    surveys_list,
)
from surveys.services.campaigns import (
    PUBLIC_ID_SHAPE,
    campaign_create,
    campaign_preview,
)
from surveys.services.surveys import survey_check_sendable

CAMPAIGNS_SHOWN = 200


class SendForm(AudienceForm):
    """When, on which channel and to whom (``AudienceForm``)."""

    name = forms.CharField(label=gettext_lazy("Campaign name"), max_length=120, required=False)
    when = forms.ChoiceField(
        label=gettext_lazy("When"),
        choices=[("now", gettext_lazy("Now")), ("later", gettext_lazy("At a date and time"))],
        widget=forms.RadioSelect,
        initial="now",
    )
    send_at = forms.DateTimeField(
        label=gettext_lazy("Date and time"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"),
        choices=[
            ("email", gettext_lazy("Email")),
            ("sms", gettext_lazy("SMS (text message)")),
            ("whatsapp", gettext_lazy("WhatsApp")),
            ("preferred", gettext_lazy("Each contact's preferred channel")),
        ],
        widget=forms.RadioSelect,
        initial="email",
        required=False,
        help_text=gettext_lazy(
            "Contacts without an address on this channel are skipped. Preferred: the "
            "contact's preferred_channel property (email, sms or whatsapp), else email when "
            "the contact has an address, else SMS. Text messages go out only in the "
            "recipient's daytime (quiet hours in the company's SMS settings)."
        ),
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, company=company, **kwargs)
        self.time_zone = zoneinfo.ZoneInfo(company.time_zone or "UTC")
        self.fields["send_at"].help_text = _("In your company's time zone (%(zone)s).") % {
            "zone": company.time_zone or "UTC"
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("when") == "later":
            send_at: datetime | None = data.get("send_at")
            if send_at is None:
                self.add_error("send_at", _("Choose when to send."))
            else:
                # The browser's local input is read in the company's zone, not the server's.
                aware = send_at.replace(tzinfo=None).replace(tzinfo=self.time_zone)
                if aware < timezone.now():
                    self.add_error("send_at", _("This time has passed: choose a later one."))
                data["scheduled_for"] = aware
        return data


def _survey_or_404(company: Company, survey_id: str) -> Survey:
    survey = survey_get(company=company, public_id=survey_id)
    if survey is None:
        raise Http404
    return survey


def _preview_token(survey: Survey, data: dict[str, Any], campaign_id: str) -> str:
    """A signature of what was previewed: a confirmation counts only for the same send."""
    scheduled_for = data.get("scheduled_for")
    what = {
        "survey": survey.public_id,
        "campaign": campaign_id,
        "audience": data["audience_value"],
        "channel": data.get("channel") or "email",
        "when": scheduled_for.isoformat() if scheduled_for else "now",
    }
    return salted_hmac(
        "surveys.campaign_preview", json.dumps(what, sort_keys=True, default=str)
    ).hexdigest()


@company_view(Role.VIEWER, write_role=Role.MANAGER)
def survey_send(request: HttpRequest, survey_id: str) -> HttpResponse:
    """Send a survey now or later, to everyone or to contacts matching property filters.

    Two steps: the form's POST shows what the send would do (audience size, who is skipped
    and why) and writes nothing; only a POST carrying that preview's confirmation creates
    the campaign. A confirmation for other settings than those previewed previews again.
    """
    company: Company = request.company  # type: ignore[attr-defined]
    survey = _survey_or_404(company, survey_id)
    form = SendForm(request.POST or None, company=company)
    context: dict[str, Any] = {"form": form, "survey": survey}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        posted_id = request.POST.get("campaign_id", "")
        campaign_id = posted_id if PUBLIC_ID_SHAPE.fullmatch(posted_id) else new_public_id()
        token = _preview_token(survey, data, campaign_id)
        confirmed = request.POST.get("confirm") == "1"
        try:
            if confirmed and constant_time_compare(request.POST.get("preview", ""), token):
                campaign = campaign_create(
                    company=company,
                    survey=survey,
                    audience=data["audience_value"],
                    scheduled_for=data.get("scheduled_for"),
                    created_by=request.user,  # type: ignore[arg-type]
                    name=data.get("name") or "",
                    channel=data.get("channel") or "email",
                    public_id=campaign_id,
                )
                messages.success(request, _("Campaign created."))
                return redirect(
                    "surveys:campaign", company_slug=company.slug, campaign_id=campaign.public_id
                )
            survey_check_sendable(survey)
            context["preview"] = campaign_preview(
                company=company,
                survey=survey,
                audience=data["audience_value"],
                channel=data.get("channel") or "email",
                campaign_public_id=campaign_id,
                scheduled_for=data.get("scheduled_for"),
            )
            context.update(
                campaign_id=campaign_id, preview_token=token, changed_since_preview=confirmed
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    return render(request, "surveys/send.html", context)


@company_view(Role.VIEWER)
def campaign_list(request: HttpRequest) -> HttpResponse:
    """The company's campaigns, newest first; ``?survey=<id>`` keeps one survey's."""
    company: Company = request.company  # type: ignore[attr-defined]
    survey_id = request.GET.get("survey", "")
    survey = _survey_or_404(company, survey_id) if survey_id else None
    campaigns = list(campaigns_list(company=company, survey=survey)[:CAMPAIGNS_SHOWN])
    context = {
        "campaigns": campaigns,
        "survey": survey,
        "surveys": surveys_list(company=company).only("public_id", "name", "status"),
    }
    return render(request, "surveys/campaign_list.html", context)


def _campaign_or_404(company: Company, campaign_id: str) -> Campaign:
    campaign: Campaign | None = campaign_get(company=company, public_id=campaign_id)
    if campaign is None:
        raise Http404
    return campaign


@company_view(Role.VIEWER)
def campaign_detail(request: HttpRequest, campaign_id: str) -> HttpResponse:
    campaign = _campaign_or_404(request.company, campaign_id)  # type: ignore[attr-defined]
    progress = campaign_progress(campaign=campaign, now=timezone.now())
    return render(
        request, "surveys/campaign_detail.html", {"campaign": campaign, "progress": progress}
    )


@company_view(Role.VIEWER)
@require_GET
def campaign_progress_view(request: HttpRequest, campaign_id: str) -> HttpResponse:
    """The campaign page's progress card alone: the page polls it (htmx) while it runs; the
    card of a finished campaign carries no polling, so the page stops asking."""
    campaign = _campaign_or_404(request.company, campaign_id)  # type: ignore[attr-defined]
    progress = campaign_progress(campaign=campaign, now=timezone.now())
    return render(
        request, "surveys/_campaign_progress.html", {"campaign": campaign, "progress": progress}
    )
