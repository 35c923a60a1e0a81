"""The company endpoints of the REST API (``/api/v1/``): thin views that call selectors and
services. Conventions (auth, errors, pagination, throttling) are in api_auth / api_base."""

from __future__ import annotations

from typing import Any, ClassVar

from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from companies.api_views import CompanyAPIView
from companies.models import Company, Membership, Role, TeamInvite, TeamInviteStatus
from companies.schema import error_responses
from companies.selectors import members_list, team_invite_get, team_invites_pending
from companies.serializers import (
    INVITABLE_ROLE_CHOICES,
    BlankAsNullEmailField,
    StrictInput,
)
from companies.services import team_invite_create, team_invite_revoke


class CompanyApi(CompanyAPIView):
    """The company the API key belongs to."""

    @extend_schema_serializer(component_name="Company")
    class OutputSerializer(serializers.ModelSerializer[Company]):
        reply_to = BlankAsNullEmailField(
            read_only=True, allow_null=True, help_text="null: replies go to the sender."
        )
        retention_months = serializers.IntegerField(
            read_only=True,
            allow_null=True,
            help_text="Personal data older than this many months is anonymised or deleted "
            "daily; null: kept for ever. Set on the company settings page.",
        )

        class Meta:
            model = Company
            fields: ClassVar[list[str]] = [
                "slug",
                "name",
                "industry",
                "country",
                "time_zone",
                "default_language",
                "sender_name",
                "reply_to",
                "retention_months",
                "created_at",
            ]
            read_only_fields = fields

    @extend_schema(
        summary="The API key's company",
        operation_id="company_retrieve",
        tags=["company"],
        responses={200: OutputSerializer, **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(self.company).data)


class MemberListApi(CompanyAPIView):
    """The company's members (people with a login), oldest first in joining order."""

    @extend_schema_serializer(component_name="Member")
    class OutputSerializer(serializers.ModelSerializer[Membership]):
        email = serializers.EmailField(source="user.email", read_only=True)
        name = serializers.CharField(source="user.get_full_name", read_only=True)

        class Meta:
            model = Membership
            fields: ClassVar[list[str]] = ["email", "name", "role", "created_at"]
            read_only_fields = fields

    @extend_schema(
        summary="Members of the company",
        operation_id="members_list",
        tags=["team"],
        responses={200: OutputSerializer(many=True), **error_responses(401, 404, 429)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(members_list(company=self.company))
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)


class InvitationListCreateApi(CompanyAPIView):
    """Teammate invitations: list the pending ones, invite someone by email.

    The invitee gets an email with an accept link (valid for ``TEAM_INVITE_TTL_DAYS``); the
    link's token is never returned by the API. ``invited_by`` stays empty: a key, not a
    person, sent it.
    """

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN  # a full-access key

    @extend_schema_serializer(component_name="InvitationCreate")
    class InputSerializer(StrictInput, serializers.Serializer[None]):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=INVITABLE_ROLE_CHOICES)

    @extend_schema_serializer(component_name="Invitation")
    class OutputSerializer(serializers.ModelSerializer[TeamInvite]):
        id = serializers.CharField(source="public_id", read_only=True)
        status = serializers.ChoiceField(choices=TeamInviteStatus.choices, read_only=True)

        class Meta:
            model = TeamInvite
            fields: ClassVar[list[str]] = [
                "id",
                "email",
                "role",
                "status",
                "created_at",
                "expires_at",
                "accepted_at",
                "revoked_at",
            ]
            read_only_fields = fields

    @extend_schema(
        summary="Pending teammate invitations",
        description="Invitations not yet accepted, revoked or expired; newest first.",
        operation_id="team_invitations_list",
        tags=["team"],
        responses={200: OutputSerializer(many=True), **error_responses(401, 404, 429)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(team_invites_pending(company=self.company))
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Invite a teammate",
        description=(
            "Emails the person an accept link. Needs a full-access key. The role cannot be "
            "owner; an address that is already a member or has a pending invitation is "
            "refused with a field error."
        ),
        operation_id="team_invitations_create",
        tags=["team"],
        request=InputSerializer,
        responses={201: OutputSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = team_invite_create(
            company=self.company, invited_by=None, **serializer.validated_data
        )
        return Response(self.OutputSerializer(issued.invite).data, status=status.HTTP_201_CREATED)


class InvitationDetailApi(CompanyAPIView):
    """One teammate invitation of the key's company: read it, or revoke it while pending.

    Accepted, revoked and expired invitations still read, with their ``status``.
    """

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN

    def _invite(self, invite_id: str) -> TeamInvite:
        invite = team_invite_get(company=self.company, public_id=invite_id)
        if invite is None:
            raise exceptions.NotFound(_("No such invitation."))
        return invite

    @extend_schema(
        summary="One teammate invitation",
        operation_id="team_invitations_retrieve",
        tags=["team"],
        responses={
            200: InvitationListCreateApi.OutputSerializer,
            **error_responses(401, 404, 429),
        },
    )
    def get(self, request: Request, invite_id: str) -> Response:
        invite = self._invite(invite_id)
        return Response(InvitationListCreateApi.OutputSerializer(invite).data)

    @extend_schema(
        summary="Revoke a pending invitation",
        description="Its accept link stops working at once. Needs a full-access key.",
        operation_id="team_invitations_revoke",
        tags=["team"],
        responses={204: None, **error_responses(401, 403, 404, 429)},
    )
    def delete(self, request: Request, invite_id: str) -> Response:
        team_invite_revoke(company=self.company, invite=self._invite(invite_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotFoundApi(APIView):
    """Every unknown path under ``/api/v1/``: the API's JSON 404, whatever the method.

    Needs no key: an unknown route is unknown to everyone, so it says nothing about tenants.
    """

    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    schema = None  # not part of the documented API

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound(self._message(request.path))

    @staticmethod
    def _message(path: str) -> str:
        if not path.endswith("/"):
            try:
                match = resolve(path + "/")
            except Resolver404:
                pass
            else:
                if match.url_name != "api-not-found":
                    return _('Unknown API route. Did you mean "%(path)s/"?') % {"path": path}
        return _("Unknown API route.")
