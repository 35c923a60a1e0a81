"""``GET /api/v1/responses/``: the key's company's responses, filtered, cursor-paginated."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response as ApiResponse

from companies.api_base import query_data
from companies.api_views import CompanyAPIView
from companies.schema import error_responses
from responses.models import Category, Response
from responses.selectors import responses_list
from surveys.models import Survey


class ResponseFilterSerializer(serializers.Serializer[None]):
    survey = serializers.CharField(
        required=False, max_length=32, help_text="A survey id: only its responses."
    )
    since = serializers.DateTimeField(required=False, help_text="Answered at or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Answered before (ISO 8601).")
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    updated_since = serializers.DateTimeField(
        required=False,
        help_text="Created or changed at or after (ISO 8601): for incremental syncs.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until <= since:
            raise serializers.ValidationError({"until": [_("Must be after since.")]})
        return attrs


@extend_schema_serializer(component_name="ResponseContact")
class ContactSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(source="public_id")
    email = serializers.EmailField(allow_null=True)
    name = serializers.CharField()


class ResponseListApi(CompanyAPIView):
    """Responses newest first. Respondents of anonymous surveys are never returned."""

    @extend_schema_serializer(component_name="Response")
    class OutputSerializer(serializers.ModelSerializer[Response]):
        id = serializers.CharField(source="public_id", read_only=True)
        survey = serializers.CharField(source="survey.public_id", read_only=True)
        invitation = serializers.SerializerMethodField()
        contact = serializers.SerializerMethodField()

        class Meta:
            model = Response
            fields: ClassVar[list[str]] = [
                "id",
                "survey",
                "invitation",
                "contact",
                "score",
                "category",
                "comment",
                "extra_answers",
                "channel",
                "language",
                "created_at",
                "updated_at",
            ]
            read_only_fields = fields

        @extend_schema_field(serializers.CharField(allow_null=True))
        def get_invitation(self, obj: Response) -> str | None:
            if obj.invitation is None or obj.survey.anonymous:
                return None
            return obj.invitation.public_id

        @extend_schema_field(ContactSerializer(allow_null=True))
        def get_contact(self, obj: Response) -> dict[str, Any] | None:
            # Anonymous (eNPS) surveys: the identity never leaves the database.
            if obj.contact is None or obj.survey.anonymous:
                return None
            return dict(ContactSerializer(obj.contact).data)

    @extend_schema(
        summary="Responses",
        description=(
            "The company's responses, newest first, cursor-paginated. `since`/`until` filter "
            "on the answer time (`until` exclusive); `updated_since` returns those created or "
            "changed since then (a respondent may change an answer). `contact` and "
            "`invitation` are null for anonymous surveys."
        ),
        operation_id="responses_list",
        tags=["responses"],
        parameters=[ResponseFilterSerializer],
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> ApiResponse:
        filters = ResponseFilterSerializer(data=query_data(request))
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        survey: Survey | None = None
        if data.get("survey"):
            survey = (
                Survey.objects.for_company(self.company).filter(public_id=data["survey"]).first()
            )
            if survey is None:
                raise serializers.ValidationError({"survey": [_("No such survey.")]})
        queryset = responses_list(
            company=self.company,
            survey=survey,
            since=data.get("since"),
            until=data.get("until"),
            category=data.get("category"),
            updated_since=data.get("updated_since"),
        )
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)
