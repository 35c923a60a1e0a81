"""Serializers shared by the API's endpoints (each endpoint's own Input/Output are nested in it).

The error envelope below only documents ``companies.api_base``'s error format in the schema.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from companies.models import Role

# An invitation can grant any role but owner: ownership is handed over by an owner, in the app.
INVITABLE_ROLE_CHOICES = [(role.value, role.label) for role in Role if role != Role.OWNER]


# The JSON types a field takes, as its schema says (DRF would also take 5 for "5", "true" or 1
# for true and "5" for 5). Checked in this order: the first class that matches decides.
_JSON_TYPES: list[tuple[type[serializers.Field[Any, Any, Any, Any]], tuple[type, ...]]] = [
    (serializers.BooleanField, (bool,)),
    (serializers.IntegerField, (int,)),
    (serializers.FloatField, (int, float)),
    (serializers.CharField, (str,)),
]


class StrictInput:
    """A JSON body as its schema says: no undeclared keys, no value of another JSON type.

    DRF would drop unknown keys silently and coerce types; here an API body with a misspelt
    key (``scheduled_at`` for ``scheduled_for``) is a 400 naming it, not a request that
    silently does something else, and ``"name": 5`` is refused like ``"name": {}``. The schema
    says ``additionalProperties: false`` for these (companies.schema.AutoSchema).
    """

    fields: Any

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = {key: [_("Unknown field.")] for key in sorted(set(data) - set(self.fields))}
            for name, field in self.fields.items():
                value = data.get(name)
                if field.read_only or value is None or name not in data:
                    continue
                for field_class, types in _JSON_TYPES:
                    if isinstance(field, field_class):
                        if isinstance(value, bool) != (bool in types) or not isinstance(
                            value, types
                        ):
                            errors[name] = [str(field.error_messages["invalid"])]
                        break
            if errors:
                raise serializers.ValidationError(errors, code="invalid")
        return super().to_internal_value(data)  # type: ignore[misc]


class _BlankAsNull:
    """Output: an empty text (a blank model field) is ``null``, so the value, when there is
    one, always has the declared format or enum."""

    def to_representation(self, value: Any) -> Any:
        if value == "":
            return None
        return super().to_representation(value)  # type: ignore[misc]


class BlankAsNullEmailField(_BlankAsNull, serializers.EmailField):
    pass


class BlankAsNullURLField(_BlankAsNull, serializers.URLField):
    pass


class BlankAsNullChoiceField(_BlankAsNull, serializers.ChoiceField):
    pass


@extend_schema_field({"$ref": "#/components/schemas/FieldErrors"})
class FieldErrorsField(serializers.DictField):
    """The messages per field of a 400 (the recursive FieldErrors schema, companies.schema)."""


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetailSerializer(serializers.Serializer[None]):
    status = serializers.IntegerField(help_text="The HTTP status code, repeated.")
    code = serializers.CharField(
        help_text="Stable machine-readable code: invalid, not_authenticated, "
        "authentication_failed, permission_denied, not_found, method_not_allowed, "
        "parse_error, unsupported_media_type, too_large, throttled, server_error."
    )
    message = serializers.CharField(help_text="Human-readable, in the request's language.")
    # "fields" shadows Serializer.fields for the type checker only: DRF's metaclass moves
    # declared fields out of the class attributes.
    fields = FieldErrorsField(  # type: ignore[assignment]
        required=False,
        help_text="Only on 400: the messages for each invalid field (non_field_errors for "
        "the request as a whole).",
    )


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer[None]):
    error = ErrorDetailSerializer()
