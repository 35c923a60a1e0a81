"""Sending through the REST API: the transactional trigger, invitations and campaigns.

Thin views: parse, call one service or selector, render. Ids are public ids.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_views import CompanyAPIView
from companies.models import Role
from companies.schema import error_responses
from companies.serializers import StrictInput
from notifications.models import Channel
from surveys.api_contacts import PropertiesField
from surveys.models import Campaign, CampaignChannel, Invitation, InvitationStatus, Survey
from surveys.selectors import (
    campaign_get,
    campaigns_list,
    invitation_get,
    invitations_list,
    survey_get,
)
from surveys.services.campaigns import campaign_create
from surveys.services.triggers import MAX_TRIGGER_DELAY, invitation_trigger

LANGUAGE_CODES = [code for code, _label in settings.SURVEY_LANGUAGES]


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "all": {"type": "boolean", "description": "true: every contact."},
            "filters": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["property"],
                    "properties": {
                        "property": {"type": "string", "minLength": 1},
                        "op": {
                            "type": "string",
                            "enum": ["eq", "neq", "in", "exists"],
                            "default": "eq",
                        },
                        "value": {
                            "description": "eq, neq: text, a number or true/false; in: a list."
                        },
                    },
                },
            },
        },
    }
)
class AudienceField(serializers.JSONField):
    """``{"all": true}`` or ``{"filters": [...]}``, checked by surveys.selectors."""


def _survey_or_404(view: CompanyAPIView, survey_id: str) -> Survey:
    survey = survey_get(company=view.company, public_id=survey_id)
    if survey is None:
        raise exceptions.NotFound(_("No such survey."))
    return survey


@extend_schema_serializer(component_name="SurveyInvitation")
class InvitationOutput(serializers.ModelSerializer[Invitation]):
    id = serializers.CharField(source="public_id", read_only=True)
    survey = serializers.CharField(source="survey.public_id", read_only=True)
    campaign = serializers.CharField(
        source="campaign.public_id", read_only=True, allow_null=True, default=None
    )
    contact = inline_serializer(
        name="SurveyInvitationContact",
        fields={
            "id": serializers.CharField(),
            "email": serializers.EmailField(allow_null=True),
            "phone": serializers.CharField(allow_null=True),
        },
    )

    class Meta:
        model = Invitation
        fields: ClassVar[list[str]] = [
            "id",
            "survey",
            "campaign",
            "contact",
            "status",
            "channel",
            "language",
            "scheduled_for",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "answered_at",
            "reminder_sent_at",
            "failed_reason",
            "properties",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Invitation) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["contact"] = {
            "id": instance.contact.public_id,
            "email": instance.contact.email,
            "phone": instance.contact.phone,
        }
        return data


class InvitationTriggerApi(CompanyAPIView):
    """The transactional trigger: survey one person from the company's own systems."""

    required_role = Role.VIEWER
    required_write_role = Role.MANAGER

    @extend_schema_serializer(component_name="SurveyInvitationCreate")
    class InputSerializer(StrictInput, serializers.Serializer[None]):
        email = serializers.EmailField(max_length=254, required=False)
        phone = serializers.CharField(max_length=32, required=False)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        properties = PropertiesField(required=False)
        channel = serializers.ChoiceField(choices=CampaignChannel.choices, default=Channel.EMAIL)
        delay = serializers.IntegerField(
            min_value=0, max_value=int(MAX_TRIGGER_DELAY.total_seconds()), default=0
        )
        language = serializers.ChoiceField(choices=LANGUAGE_CODES, required=False)
        force = serializers.BooleanField(default=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            channel = attrs.get("channel", Channel.EMAIL)
            if channel == Channel.EMAIL and not attrs.get("email"):
                raise serializers.ValidationError(
                    {"email": [_("An email address is needed for the email channel.")]}
                )
            if channel == CampaignChannel.PREFERRED:
                if not attrs.get("email") and not attrs.get("phone"):
                    raise serializers.ValidationError(
                        {"email": [_("An email address or a phone number is needed.")]}
                    )
            elif channel != Channel.EMAIL and not attrs.get("phone"):
                raise serializers.ValidationError(
                    {"phone": [_("A phone number is needed for the sms and whatsapp channels.")]}
                )
            return attrs

    @extend_schema(
        summary="Survey one person (transactional trigger)",
        description=(
            "Creates or updates the contact and schedules the invitation `delay` seconds from "
            "now (at most 90 days). Answers 201 with the invitation, or 200 with "
            '`{"status": "throttled"}` (surveyed within the throttle window; `force` ignores '
            'it) or `{"status": "suppressed"}` (unsubscribed, bounced or complained) and '
            "sends nothing. `channel` is `email` (needs `email`), `sms` or `whatsapp` (need "
            "`phone`, in international format) or `preferred` (the contact's "
            "`preferred_channel` property when it has that address, else email, else SMS); a "
            "text message waits for the recipient's local daytime (the company's quiet hours)."
        ),
        operation_id="survey_invitations_create",
        tags=["invitations"],
        request=InputSerializer,
        responses={
            201: InvitationOutput,
            200: inline_serializer(
                name="SurveyInvitationSkipped",
                fields={"status": serializers.ChoiceField(choices=["throttled", "suppressed"])},
            ),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    def post(self, request: Request, survey_id: str) -> Response:
        survey = _survey_or_404(self, survey_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, outcome = invitation_trigger(
            company=self.company, survey=survey, **serializer.validated_data
        )
        if invitation is None:
            return Response({"status": outcome}, status=status.HTTP_200_OK)
        created = invitation_get(company=self.company, public_id=invitation.public_id)
        return Response(InvitationOutput(created).data, status=status.HTTP_201_CREATED)


class InvitationListApi(CompanyAPIView):
    """Survey invitations of the key's company, newest first."""

    @extend_schema(
        summary="Survey invitations",
        operation_id="survey_invitations_list",
        tags=["invitations"],
        parameters=[
            OpenApiParameter("survey", str, description="A survey id."),
            OpenApiParameter("status", str, enum=InvitationStatus.values),
        ],
        responses={200: InvitationOutput(many=True), **error_responses(400, 401, 429)},
    )
    def get(self, request: Request) -> Response:
        survey = None
        survey_id = request.query_params.get("survey")
        if survey_id is not None:
            survey = survey_get(company=self.company, public_id=survey_id)
            if survey is None:
                raise exceptions.ValidationError({"survey": [_("No such survey.")]})
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in InvitationStatus.values:
            raise exceptions.ValidationError({"status": [_("Unknown status.")]})
        queryset = invitations_list(company=self.company, survey=survey, status=wanted)
        page = self.paginate_queryset(queryset.select_related("campaign"))
        return self.get_paginated_response(InvitationOutput(page, many=True).data)


class InvitationDetailApi(CompanyAPIView):
    @extend_schema(
        summary="One survey invitation",
        operation_id="survey_invitations_retrieve",
        tags=["invitations"],
        responses={200: InvitationOutput, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, invitation_id: str) -> Response:
        invitation = invitation_get(company=self.company, public_id=invitation_id)
        if invitation is None:
            raise exceptions.NotFound(_("No such invitation."))
        return Response(InvitationOutput(invitation).data)


@extend_schema_serializer(component_name="Campaign")
class CampaignOutput(serializers.ModelSerializer[Campaign]):
    id = serializers.CharField(source="public_id", read_only=True)
    survey = serializers.CharField(source="survey.public_id", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields: ClassVar[list[str]] = [
            "id",
            "survey",
            "name",
            "channel",
            "audience",
            "status",
            "scheduled_for",
            "created_at",
            "finished_at",
            "counts",
        ]
        read_only_fields = fields

    @extend_schema_field(
        inline_serializer(
            name="CampaignCounts",
            fields={
                name: serializers.IntegerField()
                for name in (
                    "targeted",
                    "suppressed",
                    "throttled",
                    "sampled_out",
                    "pending",
                    "sent",
                    "failed",
                    "answered",
                )
            },
        )
    )
    def get_counts(self, campaign: Campaign) -> dict[str, int]:
        return {
            "targeted": campaign.targeted,
            "suppressed": campaign.suppressed + getattr(campaign, "suppressed_at_send_count", 0),
            "throttled": campaign.throttled,
            "sampled_out": campaign.sampled_out,
            "pending": getattr(campaign, "pending_count", 0),
            "sent": getattr(campaign, "sent_count", 0),
            "failed": getattr(campaign, "failed_count", 0),
            "answered": getattr(campaign, "answered_count", 0),
        }


class CampaignListCreateApi(CompanyAPIView):
    """Campaigns: send a survey to all contacts or those matching property filters."""

    required_role = Role.VIEWER
    required_write_role = Role.MANAGER

    @extend_schema_serializer(component_name="CampaignCreate")
    class InputSerializer(StrictInput, serializers.Serializer[None]):
        survey = serializers.CharField(max_length=32, help_text="The survey's id.")
        audience = AudienceField(
            help_text='{"all": true} or {"filters": [{"property": "plan", "op": "eq", '
            '"value": "pro"}]}; op is eq, neq, in (value: a list) or exists.'
        )
        scheduled_for = serializers.DateTimeField(
            required=False, allow_null=True, help_text="Empty: now."
        )
        name = serializers.CharField(max_length=120, required=False, allow_blank=True)
        channel = serializers.ChoiceField(
            choices=CampaignChannel.choices,
            default=CampaignChannel.EMAIL,
            help_text="email, sms or whatsapp: contacts without that address are skipped; "
            "preferred: each contact's preferred_channel property (email, sms, whatsapp) when "
            "it has that address, else email when it has one, else sms.",
        )

    @extend_schema(
        summary="Campaigns",
        operation_id="campaigns_list",
        tags=["campaigns"],
        responses={200: CampaignOutput(many=True), **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(campaigns_list(company=self.company))
        return self.get_paginated_response(CampaignOutput(page, many=True).data)

    @extend_schema(
        summary="Send a survey (create a campaign)",
        description=(
            "Now, or at `scheduled_for`. Suppressed addresses, contacts surveyed within the "
            "survey's throttle window and those outside its sample are skipped and counted. "
            "A draft, paused or archived survey is refused (400)."
        ),
        operation_id="campaigns_create",
        tags=["campaigns"],
        request=InputSerializer,
        responses={201: CampaignOutput, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        survey = survey_get(company=self.company, public_id=data["survey"])
        if survey is None:
            raise exceptions.ValidationError({"survey": [_("No such survey.")]})
        campaign = campaign_create(
            company=self.company,
            survey=survey,
            audience=data["audience"],
            scheduled_for=data.get("scheduled_for"),
            created_by=None,
            name=data.get("name") or "",
            channel=data["channel"],
        )
        # Read back with its counts (zero now, but the same shape as the list).
        created = campaign_get(company=self.company, public_id=campaign.public_id)
        return Response(CampaignOutput(created).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(CompanyAPIView):
    @extend_schema(
        summary="One campaign with its counts",
        operation_id="campaigns_retrieve",
        tags=["campaigns"],
        responses={200: CampaignOutput, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, campaign_id: str) -> Response:
        campaign = campaign_get(company=self.company, public_id=campaign_id)
        if campaign is None:
            raise exceptions.NotFound(_("No such campaign."))
        return Response(CampaignOutput(campaign).data)
