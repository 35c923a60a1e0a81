"""Surveys through the REST API: list, create, read, change, delete (or archive).

Thin views: the serializers parse and document; ``surveys.services`` holds every rule (known
languages and text keys, at most five extra questions, 2–10 choices, colours, https logos,
ranges, status changes) and its ValidationErrors become 400 answers with field errors.
Reads need any key of the company; writes a full-access key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_views import CompanyAPIView
from companies.models import Role
from companies.schema import error_responses
from companies.serializers import BlankAsNullURLField, StrictInput
from surveys.defaults import EDITABLE_TEXT_KEYS, TEXT_DEFAULT_MAX_LENGTH, TEXT_MAX_LENGTH
from surveys.models import LANGUAGE_CHOICES, ScaleStyle, Survey, SurveyKind, SurveyStatus
from surveys.selectors import survey_get, surveys_list
from surveys.services.surveys import (
    CHOICES_MAX,
    EXTRA_QUESTION_KINDS,
    EXTRA_QUESTIONS_MAX,
    survey_create,
    survey_delete,
    survey_set_status,
    survey_update,
)


def _text_field(key: str) -> serializers.CharField:
    return serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=TEXT_MAX_LENGTH.get(key, TEXT_DEFAULT_MAX_LENGTH),
    )


@extend_schema_serializer(component_name="SurveyLanguageTexts")
class LanguageTextsSerializer(StrictInput, serializers.Serializer[None]):
    """The wording in one language. A missing or blank text uses the default wording."""

    question = _text_field("question")
    why_promoter = _text_field("why_promoter")
    why_passive = _text_field("why_passive")
    why_detractor = _text_field("why_detractor")
    thanks = _text_field("thanks")
    promoter_invite = _text_field("promoter_invite")
    promoter_button = _text_field("promoter_button")
    email_subject = _text_field("email_subject")
    email_intro = _text_field("email_intro")
    reminder_subject = _text_field("reminder_subject")


assert set(LanguageTextsSerializer().fields) == set(EDITABLE_TEXT_KEYS)


@extend_schema_serializer(component_name="SurveyTexts")
class TextsSerializer(StrictInput, serializers.Serializer[None]):
    """Custom wording per respondent language; ``{company}`` becomes the company's name."""

    en = LanguageTextsSerializer(required=False)
    ru = LanguageTextsSerializer(required=False)
    kk = LanguageTextsSerializer(required=False)


@extend_schema_serializer(component_name="SurveyExtraQuestion")
class ExtraQuestionSerializer(StrictInput, serializers.Serializer[None]):
    id = serializers.CharField(
        required=False,
        max_length=32,
        help_text="Stable id the answers are keyed by; given one when left out.",
    )
    kind = serializers.ChoiceField(choices=EXTRA_QUESTION_KINDS)
    text = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text="The question per language (en, ru, kk); the default language is required.",
    )
    choices = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True)),
        required=False,
        max_length=CHOICES_MAX,
        help_text="For kind choice: 2 to 10 choices, each its text per language.",
    )


@extend_schema_serializer(component_name="Survey")
class SurveyOutput(serializers.ModelSerializer[Survey]):
    id = serializers.CharField(source="public_id", read_only=True)
    texts = TextsSerializer(read_only=True)
    extra_questions = ExtraQuestionSerializer(many=True, read_only=True)
    logo_url = BlankAsNullURLField(read_only=True, allow_null=True, help_text="null: none.")
    promoter_link_url = BlankAsNullURLField(
        read_only=True, allow_null=True, help_text="null: none."
    )

    class Meta:
        model = Survey
        fields: ClassVar[list[str]] = [
            "id",
            "name",
            "kind",
            "anonymous",
            "status",
            "default_language",
            "texts",
            "extra_questions",
            "logo_url",
            "promoter_link_url",
            "accent_color",
            "scale_style",
            "throttle_days",
            "sample_percent",
            "reminder_after_days",
            "link_valid_days",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs: ClassVar[dict[str, Any]] = {
            "anonymous": {"help_text": "True for eNPS: respondents are never shown."},
        }


class _SurveyInput(StrictInput, serializers.Serializer[None]):
    """Fields shared by create and change; the services check the rest."""

    name = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(
        choices=SurveyKind.choices,
        default=SurveyKind.NPS,
        help_text="eNPS surveys are anonymous. Changes only while the survey is a draft.",
    )
    default_language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, required=False)
    texts = TextsSerializer(required=False)
    extra_questions = serializers.ListField(
        child=ExtraQuestionSerializer(), required=False, max_length=EXTRA_QUESTIONS_MAX
    )
    logo_url = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=200,
        help_text="An https:// image URL; empty or null: none.",
    )
    promoter_link_url = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=500,
        help_text="An https:// review or referral page, shown to promoters after they answer; "
        "empty or null: none.",
    )
    accent_color = serializers.CharField(required=False, max_length=7, help_text="#rrggbb")
    scale_style = serializers.ChoiceField(choices=ScaleStyle.choices, required=False)
    throttle_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    sample_percent = serializers.IntegerField(required=False, min_value=1, max_value=100)
    reminder_after_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=60, help_text="null: no reminder"
    )
    link_valid_days = serializers.IntegerField(required=False, min_value=1, max_value=365)

    def validate_logo_url(self, value: str | None) -> str:
        return value or ""

    def validate_promoter_link_url(self, value: str | None) -> str:
        return value or ""


def _survey_or_404(view: CompanyAPIView, survey_id: str) -> Survey:
    survey = survey_get(company=view.company, public_id=survey_id)
    if survey is None:
        raise exceptions.NotFound(_("No such survey."))
    return survey


class SurveyListCreateApi(CompanyAPIView):
    """The company's surveys, newest first; create one (as a draft)."""

    required_role = Role.VIEWER
    required_write_role = Role.MANAGER  # a full-access key

    @extend_schema_serializer(component_name="SurveyCreate")
    class InputSerializer(_SurveyInput):
        pass

    @extend_schema(
        summary="List surveys",
        description="Newest first, cursor-paginated. `status` filters by status.",
        operation_id="surveys_list",
        tags=["surveys"],
        parameters=[
            OpenApiParameter("status", str, enum=SurveyStatus.values, required=False),
        ],
        responses={200: SurveyOutput(many=True), **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        surveys = surveys_list(company=self.company)
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in SurveyStatus.values:
                raise serializers.ValidationError({"status": [_("Unknown status.")]})
            surveys = surveys.filter(status=wanted)
        page = self.paginate_queryset(surveys)
        return self.get_paginated_response(SurveyOutput(page, many=True).data)

    @extend_schema(
        summary="Create a survey",
        description=(
            "Created as a draft: activate it (PATCH `status`) before sending. Anything left "
            "out takes its default; texts left out use the default wording of the kind in "
            "each language. Needs a full-access key."
        ),
        operation_id="surveys_create",
        tags=["surveys"],
        request=InputSerializer,
        responses={201: SurveyOutput, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        survey = survey_create(company=self.company, **serializer.validated_data)
        return Response(SurveyOutput(survey).data, status=status.HTTP_201_CREATED)


class SurveyDetailApi(CompanyAPIView):
    """One survey of the key's company."""

    required_role = Role.VIEWER
    required_write_role = Role.MANAGER

    @extend_schema_serializer(component_name="SurveyChange")
    class InputSerializer(_SurveyInput):
        status = serializers.ChoiceField(
            choices=SurveyStatus.choices,
            required=False,
            help_text=(
                "draft → active | archived; active → paused | archived; paused → active | "
                "archived; archived → paused."
            ),
        )

    @extend_schema(
        summary="One survey",
        operation_id="surveys_retrieve",
        tags=["surveys"],
        responses={200: SurveyOutput, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, survey_id: str) -> Response:
        return Response(SurveyOutput(_survey_or_404(self, survey_id)).data)

    @extend_schema(
        summary="Change a survey",
        description=(
            "Only the fields sent change; all of them or none. `texts` and "
            "`extra_questions` are replaced as a whole. A `status` change is applied after "
            "the other fields, in the same transaction. Needs a full-access key."
        ),
        operation_id="surveys_partial_update",
        tags=["surveys"],
        request=InputSerializer,
        responses={200: SurveyOutput, **error_responses(400, 401, 403, 404, 429)},
    )
    def patch(self, request: Request, survey_id: str) -> Response:
        survey = _survey_or_404(self, survey_id)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        new_status = fields.pop("status", None)
        with transaction.atomic():
            if fields:
                survey = survey_update(company=self.company, survey=survey, **fields)
            if new_status is not None:
                survey = survey_set_status(company=self.company, survey=survey, status=new_status)
        return Response(SurveyOutput(survey).data)

    @extend_schema(
        summary="Delete (or archive) a survey",
        description=(
            "A survey that was never used (no invitations, no responses) is deleted: 204. "
            "One that was used is archived instead, so that its history stays: 200 with the "
            "archived survey. Needs a full-access key."
        ),
        operation_id="surveys_destroy",
        tags=["surveys"],
        responses={
            200: SurveyOutput,
            204: None,
            **error_responses(401, 403, 404, 429),
        },
    )
    def delete(self, request: Request, survey_id: str) -> Response:
        survey = _survey_or_404(self, survey_id)
        if survey_delete(company=self.company, survey=survey):
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(SurveyOutput(survey).data)
