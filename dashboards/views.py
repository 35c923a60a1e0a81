"""The dashboard page under /c/<company_slug>/dashboard/: company-wide or one survey.

Thin: the filter form turns the query string into a period and options, ``metrics_for``
(rollups) gives the figures, ``funnel_for`` the sending funnel, and the template draws the
charts from ``charts.trend_chart``. A constant number of queries whatever the data size.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_safe

from audit.services import audit_download
from companies.models import Company, Role
from companies.permissions import company_view
from companies.spreadsheets import spreadsheet_row
from dashboards.benchmarks import Benchmark, benchmarks_for_industry
from dashboards.charts import trend_chart
from dashboards.funnel import funnel_for
from dashboards.insights import (
    PEER_MIN_COMPANIES,
    dashboard_settings_of,
    dashboard_settings_update,
    peer_benchmark,
    revenue_at_risk,
)
from dashboards.selectors import company_today, day_bounds, metrics_for
from responses.models import Response, ResponseChannel
from surveys.models import Survey

BAND_LABELS = {
    "world_class": gettext_lazy("World-class (above 80)"),
    "excellent": gettext_lazy("Excellent (above 50)"),
    "favourable": gettext_lazy("Favourable (above 20)"),
    "good": gettext_lazy("Good (above 0)"),
    "needs_work": gettext_lazy("Needs work (0 or below)"),
}
CHANNEL_LABELS = dict(ResponseChannel.choices)
TREND_CSV_COLUMNS = ("start", "end", "response_count", "nps", "ci95_low", "ci95_high", "low_sample")
PERIODS = (
    ("7", gettext_lazy("7 days")),
    ("30", gettext_lazy("30 days")),
    ("90", gettext_lazy("90 days")),
    ("365", gettext_lazy("365 days")),
    ("custom", gettext_lazy("Custom range")),
)
DEFAULT_PERIOD = "30"
DEFAULT_TREND = {"7": "day", "30": "day", "90": "week", "365": "month", "custom": "week"}
MAX_RANGE_DAYS = 3 * 366
COMMENTS_SHOWN = 8
# Contact properties offered as segments: the keys of the latest answers' snapshots.
PROPERTY_SAMPLE = 300


def headline_context(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What ``dashboards/_nps_headline.html`` needs besides ``metrics``: the band's words and
    the promoter/passive/detractor bar's segments (percent of 100, the SVG's width)."""
    percent = {
        name: metrics[name]["percent"] or 0.0 for name in ("promoters", "passives", "detractors")
    }
    return {
        "band_label": BAND_LABELS.get(metrics["band"] or "", ""),
        "breakdown": {
            "promoters": percent["promoters"],
            "passives": percent["passives"],
            "passives_end": percent["promoters"] + percent["passives"],
            "detractors": percent["detractors"],
        },
    }


class DashboardFilters(forms.Form):
    survey = forms.ChoiceField(label=gettext_lazy("Survey"), required=False)
    period = forms.ChoiceField(label=gettext_lazy("Period"), choices=PERIODS, required=False)
    since = forms.DateField(
        label=pgettext_lazy("date range", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=pgettext_lazy("date range", "To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    trend = forms.ChoiceField(
        label=gettext_lazy("Trend by"),
        required=False,
        choices=[
            ("", gettext_lazy("Automatic")),
            ("day", gettext_lazy("Day")),
            ("week", gettext_lazy("Week")),
            ("month", gettext_lazy("Month")),
        ],
    )
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), required=False)
    segment = forms.ChoiceField(label=gettext_lazy("Segment by"), required=False)

    def __init__(
        self, data: Any, *, surveys: list[Survey], properties: list[str], today: date
    ) -> None:
        # Unbound, the control shows the period the figures cover (not the first choice).
        super().__init__(data, initial={"period": DEFAULT_PERIOD})
        self.today = today
        self.surveys = {s.public_id: s for s in surveys}
        self._choices(
            "survey", [("", _("All surveys"))] + [(s.public_id, s.list_label) for s in surveys]
        )
        self._choices("channel", [("", _("All channels")), *ResponseChannel.choices])
        self._choices(
            "segment",
            [
                ("", _("No segments")),
                ("channel", _("Channel")),
                ("survey", _("Survey")),
                ("language", _("Language")),
            ]
            + [(f"property:{key}", key) for key in properties],
        )

    def _choices(self, name: str, choices: list[tuple[str, Any]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        period = cleaned.get("period") or DEFAULT_PERIOD
        cleaned["period"] = period
        if period == "custom":
            since, until = cleaned.get("since"), cleaned.get("until")
            if since is None or until is None:
                raise forms.ValidationError(_("Choose both dates of the custom range."))
            if since > until:
                self.add_error("until", _("The end is before the start."))
            elif (until - since).days >= MAX_RANGE_DAYS:
                self.add_error("since", _("At most three years at a time."))
        else:
            cleaned["until"] = self.today
            cleaned["since"] = self.today - timedelta(days=int(period) - 1)
        cleaned["trend"] = cleaned.get("trend") or DEFAULT_TREND[period]
        cleaned["survey_object"] = self.surveys.get(cleaned.get("survey") or "")
        return cleaned


def _property_keys(company: Company) -> list[str]:
    """Contact properties seen in the latest answers (bounded: one small query)."""
    recent = (
        Response.objects.for_company(company)
        .exclude(contact_properties={})
        .order_by("-created_at")
        .values_list("contact_properties", flat=True)[:PROPERTY_SAMPLE]
    )
    keys: set[str] = set()
    for properties in recent:
        if isinstance(properties, dict):
            keys.update(str(key) for key in properties)
    return sorted(keys)


def _comments(
    company: Company, survey: Survey | None, channel: str, since: date, until: date
) -> list[Response]:
    zone_start, zone_end = day_bounds(company, since, until)
    rows = Response.objects.for_company(company).exclude(comment="")
    rows = rows.filter(created_at__gte=zone_start, created_at__lt=zone_end)
    if survey is not None:
        rows = rows.filter(survey=survey)
    if channel:
        rows = rows.filter(channel=channel)
    return list(rows.select_related("survey", "contact").order_by("-created_at")[:COMMENTS_SHOWN])


def _benchmarks_by_source(industry: str) -> list[tuple[str, list[Benchmark]]]:
    """The industry's published figures, one group per source (never mixed in one list)."""
    groups: dict[str, list[Benchmark]] = {}
    for benchmark in benchmarks_for_industry(industry=industry):
        source = benchmark.source_display
        heading = f"{source} ({benchmark.year})" if benchmark.year else source
        groups.setdefault(heading, []).append(benchmark)
    return list(groups.items())


def _filtered(request: HttpRequest, company: Company) -> tuple[DashboardFilters, dict[str, Any]]:
    """The filter form and the options it gives (the defaults when it is empty or invalid)."""
    surveys = list(Survey.objects.for_company(company).order_by("name", "id"))
    today = company_today(company)
    form = DashboardFilters(
        request.GET or None, surveys=surveys, properties=_property_keys(company), today=today
    )
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data
    return form, {
        "period": DEFAULT_PERIOD,
        "since": today - timedelta(days=int(DEFAULT_PERIOD) - 1),
        "until": today,
        "trend": DEFAULT_TREND[DEFAULT_PERIOD],
        "survey_object": None,
        "channel": "",
        "segment": "",
    }


@require_safe
@company_view(Role.VIEWER)
def trend_export(request: HttpRequest) -> HttpResponse:
    """The dashboard's trend (same filters) as CSV: one row per day, week or month."""
    company: Company = request.company  # type: ignore[attr-defined]
    _form, options = _filtered(request, company)
    metrics = metrics_for(
        company=company,
        survey=options["survey_object"],
        since=options["since"],
        until=options["until"],
        trend=options["trend"],
        channel=options.get("channel") or None,
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"nps-{company.slug}-{options['since']:%Y%m%d}-{options['until']:%Y%m%d}.csv"
    audit_download(company=company, kind="trend", file_name=name, filters=request.GET.dict())
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        ["start", "end", "response_count", "nps", "ci95_low", "ci95_high", "low_sample"]
    )
    for point in metrics["trend"] or []:
        interval = point["ci95"]
        # Numbers and dates only, today; through the one rule all the same (a negative NPS
        # is a plain number and stays one).
        writer.writerow(
            spreadsheet_row(
                [
                    point["start"].isoformat(),
                    point["end"].isoformat(),
                    point["response_count"],
                    "" if point["nps"] is None else repr(point["nps"]),
                    "" if interval is None else repr(interval["low"]),
                    "" if interval is None else repr(interval["high"]),
                    "true" if point["low_sample"] else "false",
                ]
            )
        )
    return response


@company_view(Role.VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Headline NPS with its interval, breakdown, comparisons, trend, funnel, segments,
    latest comments and the industry's benchmarks, for a period and optional filters."""
    company: Company = request.company  # type: ignore[attr-defined]
    form, options = _filtered(request, company)
    settings = dashboard_settings_of(company=company)
    survey: Survey | None = options["survey_object"]
    channel = options.get("channel") or ""
    segment = options.get("segment") or ""
    metrics = metrics_for(
        company=company,
        survey=survey,
        since=options["since"],
        until=options["until"],
        trend=options["trend"],
        channel=channel or None,
        segment=segment or None,
        year_ago=True,
    )
    label_format = {"day": "j M", "week": "j M", "month": "M Y"}[options["trend"]]
    comparisons = [
        (label, figures)
        for label, figures in (
            (_("Previous period"), metrics["previous"]),
            (_("A year earlier"), metrics["year_ago"]),
        )
        if figures is not None
    ]
    segments = [{**row, "bar": abs(row["nps"] or 0.0) / 2} for row in metrics["segments"] or []]
    context = {
        **headline_context(metrics),
        "comparisons": comparisons,
        "segments": segments,
        "segment_label": dict(form.fields["segment"].choices).get(segment, _("Segment")),  # type: ignore[attr-defined]
        "form": form,
        "options": options,
        "survey": survey,
        "metrics": metrics,
        "chart": trend_chart(metrics["trend"] or [], label_format=label_format),
        "funnel": [
            {**row, "label": CHANNEL_LABELS.get(row["channel"], row["channel"])}
            for row in funnel_for(
                company=company,
                survey=survey,
                since=options["since"],
                until=options["until"],
                channel=channel or None,
            )
        ],
        "export_query": request.GET.urlencode(),
        "comments": _comments(company, survey, channel, options["since"], options["until"]),
        "revenue": revenue_at_risk(
            company=company,
            property_name=settings.revenue_property,
            since=options["since"],
            until=options["until"],
            survey=survey,
            channel=channel or None,
        ),
        "peers": peer_benchmark(company=company, since=options["since"], until=options["until"]),
        "peer_opt_in": settings.peer_benchmark,
        "peer_min_companies": PEER_MIN_COMPANIES,
        "benchmarks": _benchmarks_by_source(company.industry),
        "anonymous": survey is not None and survey.anonymous,
    }
    return render(request, "dashboards/dashboard.html", context)


class DashboardSettingsForm(forms.Form):
    revenue_property = forms.CharField(
        label=gettext_lazy("Revenue property"),
        required=False,
        max_length=64,
        help_text=gettext_lazy(
            "A numeric contact property holding what a customer is worth, e.g. yearly_spend. "
            "The dashboard sums it over detractors and passives. Leave empty to hide it."
        ),
    )
    segment_properties = forms.CharField(
        label=gettext_lazy("Segment properties"),
        required=False,
        max_length=400,
        help_text=gettext_lazy(
            "Contact properties you segment by often, separated by commas (e.g. plan, city; "
            "at most five). They are counted ahead like channels, so their segments open as "
            "fast with a million answers as with a hundred."
        ),
    )
    peer_benchmark = forms.BooleanField(
        label=gettext_lazy("Join the peer benchmark of my industry"),
        required=False,
        help_text=gettext_lazy(
            "Your NPS counts, anonymously, towards the median and quartiles of the companies "
            "of your industry on this platform that joined; you see them once at least five "
            "companies take part. No company's own figure is ever shown to another."
        ),
    )


@company_view(Role.VIEWER, write_role=Role.ADMIN)
def dashboard_settings(request: HttpRequest) -> HttpResponse:
    """Revenue property and peer-benchmark opt-in (admins change them; members read)."""
    company: Company = request.company  # type: ignore[attr-defined]
    current = dashboard_settings_of(company=company)
    form = DashboardSettingsForm(
        request.POST or None,
        initial={
            "revenue_property": current.revenue_property,
            "segment_properties": ", ".join(current.segment_properties or []),
            "peer_benchmark": current.peer_benchmark,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            dashboard_settings_update(
                company=company,
                revenue_property=form.cleaned_data["revenue_property"],
                peer_benchmark=form.cleaned_data["peer_benchmark"],
                segment_properties=form.cleaned_data["segment_properties"].split(","),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Dashboard settings saved."))
            return redirect("dashboards:settings", company_slug=company.slug)
    context = {"form": form, "properties": _property_keys(company)}
    return render(request, "dashboards/settings.html", context)
