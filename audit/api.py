"""``GET /api/v1/audit-log/``: the audit log for a SIEM, newest first, cursor-paginated."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import TARGET_TYPES, ActorKind, AuditAction, AuditEntry
from audit.selectors import AuditFilters, audit_entries
from companies.api_base import query_data
from companies.api_views import CompanyAPIView
from companies.models import Role
from companies.schema import error_responses


class AuditFilterSerializer(serializers.Serializer[None]):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    actor_kind = serializers.ChoiceField(choices=ActorKind.choices, required=False)
    object_type = serializers.ChoiceField(
        choices=sorted(TARGET_TYPES), required=False, help_text="What the entry is about."
    )
    since = serializers.DateTimeField(required=False, help_text="At or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Before (ISO 8601).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until <= since:
            raise serializers.ValidationError({"until": [_("Must be after since.")]})
        return attrs


class AuditLogApi(CompanyAPIView):
    """Owners' and admins' page as JSON: a full-access key is needed, even to read."""

    required_role = Role.ADMIN

    @extend_schema_serializer(component_name="AuditEntry")
    class OutputSerializer(serializers.ModelSerializer[AuditEntry]):
        actor = serializers.CharField(source="actor_label", read_only=True)
        object_type = serializers.CharField(source="target_type", read_only=True)
        object_id = serializers.CharField(source="target_id", read_only=True)
        object = serializers.CharField(source="target_label", read_only=True)
        ip = serializers.IPAddressField(read_only=True, allow_null=True)
        changes = serializers.DictField(
            child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
            read_only=True,
            help_text='{"field": [before, after]} for the fields that changed.',
        )

        class Meta:
            model = AuditEntry
            fields: ClassVar[list[str]] = [
                "created_at",
                "action",
                "actor_kind",
                "actor",
                "ip",
                "object_type",
                "object_id",
                "object",
                "changes",
            ]
            read_only_fields = fields

    @extend_schema(
        summary="Audit log",
        description=(
            "Who changed what and when in the company, newest first, cursor-paginated: "
            "the same entries as the web page. Needs a full-access key."
        ),
        operation_id="audit_log_list",
        tags=["audit"],
        parameters=[AuditFilterSerializer],
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        filters = AuditFilterSerializer(data=query_data(request))
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        rows = audit_entries(
            company=self.company,
            filters=AuditFilters(
                action=data.get("action", ""),
                target_type=data.get("object_type", ""),
                since=data.get("since"),
                until=data.get("until"),
            ),
        )
        if data.get("actor_kind"):
            rows = rows.filter(actor_kind=data["actor_kind"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)
