"""Metrics endpoints of the REST API: thin adapters over ``dashboards.selectors.metrics_for``."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_base import query_data
from companies.api_views import CompanyAPIView
from companies.models import Company
from companies.schema import error_responses
from dashboards.metrics import BANDS, NEEDS_WORK
from dashboards.selectors import TRENDS, company_zone, metrics_for
from responses.models import ResponseChannel
from surveys.models import Survey

# A day-by-day trend of ten years is already more points than any chart can show.
MAX_TREND_POINTS = 3660
# Days the metrics take: far enough either way for any answer, near enough that the previous
# period of the longest range still is a date (year 0465 made it overflow: a 500).
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


@extend_schema_field(OpenApiTypes.DATE)
class DayField(serializers.Field[date | datetime, Any, Any, Any]):
    """An ISO date (``2026-11-22``). An ISO date-time is accepted too, for clients of the
    first version of this API; the view takes its day in the company's time zone."""

    default_error_messages = {
        "invalid": gettext_lazy("Enter a date as YYYY-MM-DD."),
        "out_of_range": gettext_lazy("Enter a date between {first} and {last}."),
    }

    def to_internal_value(self, data: Any) -> date | datetime:
        text = str(data).strip()
        try:
            day = parse_date(text)
            moment = None if day else parse_datetime(text)
        except ValueError:
            day = moment = None
        value = day if day is not None else moment
        if value is None:
            self.fail("invalid")
            raise AssertionError  # fail() raises
        if not FIRST_DAY <= (value.date() if isinstance(value, datetime) else value) <= LAST_DAY:
            self.fail("out_of_range", first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat())
        return value

    def to_representation(self, value: date) -> str:
        return value.isoformat()


class MetricsQuerySerializer(serializers.Serializer[None]):
    since = DayField(
        required=False,
        help_text="First day counted (inclusive), company time zone. Omitted: from the first "
        "answer, and no comparison with a previous period.",
    )
    until = DayField(
        required=False,
        help_text="Last day counted (inclusive), company time zone; default today.",
    )
    trend = serializers.ChoiceField(
        choices=TRENDS, required=False, help_text="Adds `trend`: buckets by day, ISO week, month."
    )
    channel = serializers.ChoiceField(choices=ResponseChannel.choices, required=False)
    segment = serializers.CharField(
        required=False,
        max_length=100,
        help_text="Adds `segments`: `channel`, `survey`, `language`, or the name of a contact "
        "property (as snapshotted with each answer); `property:<name>` for a property named "
        "like one of those kinds.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        zone: zoneinfo.ZoneInfo = self.context["zone"]
        for name in ("since", "until"):
            value = attrs.get(name)
            if isinstance(value, datetime):
                attrs[name] = (
                    (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(zone).date()
                )
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until < since:
            raise serializers.ValidationError({"until": [_("Must not be before since.")]})
        if (
            attrs.get("trend") == "day"
            and since
            and until
            and (until - since).days >= MAX_TREND_POINTS
        ):
            raise serializers.ValidationError(
                {"trend": [_("Too many days for a daily trend: use week or month.")]}
            )
        return attrs


@extend_schema_serializer(component_name="CategoryFigure")
class CategoryFigureSerializer(serializers.Serializer[None]):
    count = serializers.IntegerField()
    percent = serializers.FloatField(
        allow_null=True, help_text="Percent of response_count, full precision; null if none."
    )


@extend_schema_serializer(component_name="Interval")
class IntervalSerializer(serializers.Serializer[None]):
    low = serializers.FloatField()
    high = serializers.FloatField()


_BAND_CHOICES = [NEEDS_WORK, *(name for name, _above in reversed(BANDS))]


class PeriodFiguresSerializer(serializers.Serializer[dict[str, Any]]):
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    response_count = serializers.IntegerField()
    nps = serializers.FloatField(
        allow_null=True,
        help_text="100·(promoters − detractors)/N, full precision; null with no responses.",
    )
    promoters = CategoryFigureSerializer()
    passives = CategoryFigureSerializer()
    detractors = CategoryFigureSerializer()
    ci95 = IntervalSerializer(
        allow_null=True,
        help_text="95% adjusted-Wald interval of the NPS, within [−100, 100]; null if none.",
    )
    low_sample = serializers.BooleanField(help_text="Fewer than 30 responses.")
    band = serializers.ChoiceField(
        choices=_BAND_CHOICES,
        allow_null=True,
        help_text="> 80 world_class, > 50 excellent, > 20 favourable, > 0 good, else needs_work.",
    )


@extend_schema_serializer(component_name="PreviousPeriodFigures")
class PreviousFiguresSerializer(PeriodFiguresSerializer):
    difference = serializers.FloatField(
        allow_null=True, help_text="NPS now minus NPS then; null when a period has no answer."
    )
    difference_ci95 = IntervalSerializer(
        allow_null=True, help_text="95% interval of the difference (adjusted counts)."
    )
    z = serializers.FloatField(
        allow_null=True, help_text="z of the two-sample test on adjusted counts."
    )
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided p-value of that test.")
    significant = serializers.BooleanField(
        help_text="p < 0.05: only then may a change be shown as up or down."
    )


@extend_schema_serializer(component_name="TrendPoint")
class TrendPointSerializer(serializers.Serializer[None]):
    start = serializers.DateField()
    end = serializers.DateField(help_text="Last day of the bucket (inclusive).")
    response_count = serializers.IntegerField()
    nps = serializers.FloatField(allow_null=True)
    ci95 = IntervalSerializer(allow_null=True)
    low_sample = serializers.BooleanField()


@extend_schema_serializer(component_name="Segment")
class SegmentSerializer(serializers.Serializer[None]):
    value = serializers.CharField(
        allow_null=True, help_text="The segment's value (a survey's id); null: no value."
    )
    name = serializers.CharField(help_text="How to show the value (a survey's name).")
    response_count = serializers.IntegerField()
    nps = serializers.FloatField(allow_null=True)
    ci95 = IntervalSerializer(allow_null=True)
    low_sample = serializers.BooleanField()


class MetricsSerializer(PeriodFiguresSerializer):
    previous = PreviousFiguresSerializer(
        allow_null=True,
        help_text="The previous period of equal length (only when `since` is given).",
    )
    trend = TrendPointSerializer(many=True, allow_null=True, help_text="With `trend`.")
    segments = SegmentSerializer(
        many=True,
        allow_null=True,
        help_text="With `segment`, best NPS first. With anonymous (eNPS) answers in scope, "
        "segments of fewer than 5 responses are left out.",
    )
    segments_hidden = serializers.IntegerField(help_text="Segments left out for anonymity.")


_DESCRIPTION = (
    "Promoters answer 9–10, passives 7–8, detractors 0–6; NPS = 100·(P − D)/N. Numbers are "
    "not rounded. `nps`, `ci95`, `band` and the percentages are null when there is no response "
    "in the period. Periods are whole days in the company's time zone. Figures are exact and "
    "current (rollups plus answers not yet rolled up)."
)


def _metrics(company: Company, survey: Survey | None, request: Request) -> dict[str, Any]:
    query = MetricsQuerySerializer(
        data=query_data(request), context={"zone": company_zone(company)}
    )
    query.is_valid(raise_exception=True)
    return dict(metrics_for(company=company, survey=survey, **query.validated_data))


class CompanyMetricsApi(CompanyAPIView):
    """NPS across all of the company's surveys."""

    @extend_schema_serializer(component_name="Metrics")
    class OutputSerializer(MetricsSerializer):
        pass

    @extend_schema(
        summary="NPS of the company",
        description=_DESCRIPTION,
        operation_id="company_metrics",
        tags=["metrics"],
        parameters=[MetricsQuerySerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        body = _metrics(self.company, None, request)
        return Response(self.OutputSerializer(body).data)


class SurveyMetricsApi(CompanyAPIView):
    """NPS of one survey."""

    @extend_schema_serializer(component_name="SurveyMetrics")
    class OutputSerializer(MetricsSerializer):
        survey = serializers.CharField()

    @extend_schema(
        summary="NPS of a survey",
        description=_DESCRIPTION,
        operation_id="survey_metrics",
        tags=["metrics"],
        parameters=[MetricsQuerySerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, survey_id: str) -> Response:
        survey = Survey.objects.for_company(self.company).filter(public_id=survey_id).first()
        if survey is None:
            raise exceptions.NotFound(_("No such survey."))
        body = {"survey": survey.public_id, **_metrics(self.company, survey, request)}
        return Response(self.OutputSerializer(body).data)
