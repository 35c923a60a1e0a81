"""Serializers shared by the API's endpoints (each endpoint's own Input/Output are nested in it).

The error envelope below only documents ``companies.api_base``'s error format in the schema.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from companies.models import Role

# An invitation can grant any role but owner: ownership is handed over by an owner, in the app.
INVITABLE_ROLE_CHOICES = [(role.value, role.label) for role in Role if role != Role.OWNER]


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetailSerializer(serializers.Serializer[None]):
    status = serializers.IntegerField(help_text="The HTTP status code, repeated.")
    code = serializers.CharField(
        help_text="Stable machine-readable code: invalid, not_authenticated, "
        "authentication_failed, permission_denied, not_found, method_not_allowed, "
        "parse_error, unsupported_media_type, throttled, server_error."
    )
    message = serializers.CharField(help_text="Human-readable, in the request's language.")
    # "fields" shadows Serializer.fields for the type checker only: DRF's metaclass moves
    # declared fields out of the class attributes.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only on 400: the messages for each invalid field (non_field_errors for "
        "the request as a whole).",
    )


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer[None]):
    error = ErrorDetailSerializer()
