"""Metrics endpoints of the REST API (dashboards → responses: reads through its selectors)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_views import CompanyAPIView
from companies.schema import error_responses
from dashboards.metrics import nps_summary
from responses.selectors import score_counts
from surveys.models import Survey


class PeriodSerializer(serializers.Serializer[None]):
    since = serializers.DateTimeField(required=False, help_text="From (inclusive, ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="To (exclusive, ISO 8601).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until <= since:
            raise serializers.ValidationError({"until": [_("Must be after since.")]})
        return attrs


@extend_schema_serializer(component_name="CategoryFigure")
class CategoryFigureSerializer(serializers.Serializer[None]):
    count = serializers.IntegerField()
    percent = serializers.FloatField(
        allow_null=True, help_text="Percent of response_count, full precision; null if none."
    )


class SurveyMetricsApi(CompanyAPIView):
    """NPS of one survey over a period, from one aggregate query of counts per score."""

    @extend_schema_serializer(component_name="SurveyMetrics")
    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        survey = serializers.CharField()
        since = serializers.DateTimeField(allow_null=True)
        until = serializers.DateTimeField(allow_null=True)
        response_count = serializers.IntegerField()
        nps = serializers.FloatField(
            allow_null=True,
            help_text="100·(promoters − detractors)/N, full precision; null with no responses.",
        )
        promoters = CategoryFigureSerializer()
        passives = CategoryFigureSerializer()
        detractors = CategoryFigureSerializer()

    @extend_schema(
        summary="NPS of a survey",
        description=(
            "Promoters answer 9–10, passives 7–8, detractors 0–6; NPS = 100·(P − D)/N. "
            "Values are not rounded. `nps` and the percentages are null when there is no "
            "response in the period."
        ),
        operation_id="survey_metrics",
        tags=["metrics"],
        parameters=[PeriodSerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request: Request, survey_id: str) -> Response:
        survey = Survey.objects.for_company(self.company).filter(public_id=survey_id).first()
        if survey is None:
            raise exceptions.NotFound(_("No such survey."))
        period = PeriodSerializer(data=request.query_params)
        period.is_valid(raise_exception=True)
        since, until = period.validated_data.get("since"), period.validated_data.get("until")
        summary = nps_summary(
            score_counts(company=self.company, survey=survey, since=since, until=until)
        )
        body = {"survey": survey.public_id, "since": since, "until": until, **summary}
        return Response(self.OutputSerializer(body).data)
