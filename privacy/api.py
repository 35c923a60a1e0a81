"""Data subject rights in the REST API: export or erase one person's data (full-access keys).

Both are POSTs with the identifier in the body: an email address or phone number in a URL
would sit in every access log on the way.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_views import CompanyAPIView
from companies.models import ApiKey, Role
from companies.schema import error_responses
from companies.serializers import StrictInput
from privacy.models import IdentifierKind, PersonalDataRequest, RequestVia
from privacy.selectors import Person, person_identify
from privacy.services import Actor, person_erase, person_export_recorded

_KINDS = (IdentifierKind.EMAIL, IdentifierKind.PHONE, IdentifierKind.EXTERNAL_ID)


@extend_schema_serializer(component_name="PersonIdentifier")
class PersonInputSerializer(StrictInput, serializers.Serializer[None]):
    """Exactly one of the three."""

    email = serializers.CharField(required=False, max_length=254)
    phone = serializers.CharField(
        required=False, max_length=32, help_text="E.164, e.g. +77011234567."
    )
    external_id = serializers.CharField(required=False, max_length=128)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [kind for kind in _KINDS if attrs.get(kind)]
        if len(given) != 1:
            field = given[1] if given else IdentifierKind.EMAIL.value
            raise serializers.ValidationError(
                {field: [_("Give exactly one of email, phone or external_id.")]}
            )
        return attrs


@extend_schema_serializer(component_name="PersonalDataExport")
class ExportOutputSerializer(serializers.Serializer[None]):
    generated_at = serializers.CharField(help_text="ISO 8601.")
    company = serializers.CharField()
    contacts = serializers.ListField(child=serializers.DictField())
    invitations = serializers.ListField(child=serializers.DictField())
    responses = serializers.ListField(
        child=serializers.DictField(), help_text="Each with its follow-up threads."
    )
    deliveries = serializers.ListField(child=serializers.DictField())
    suppressions = serializers.ListField(child=serializers.DictField())
    recurring_surveys = serializers.ListField(child=serializers.DictField())
    widget_views = serializers.ListField(child=serializers.DictField())


@extend_schema_serializer(component_name="PersonalDataErasure")
class ErasureOutputSerializer(serializers.ModelSerializer[PersonalDataRequest]):
    id = serializers.CharField(source="public_id", read_only=True)
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = PersonalDataRequest
        fields: ClassVar[list[str]] = ["id", "kind", "identifier_kind", "created_at", "counts"]
        read_only_fields = fields


class _PersonApi(CompanyAPIView):
    required_role = Role.ADMIN  # a full-access key, to read as much as to erase
    required_write_role = Role.ADMIN

    def person(self, request: Request) -> tuple[Person, Actor]:
        serializer = PersonInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kind = next(k for k in _KINDS if serializer.validated_data.get(k))
        try:
            person = person_identify(
                company=self.company, kind=kind, value=serializer.validated_data[kind]
            )
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from exc
        api_key = request.auth
        assert isinstance(api_key, ApiKey)
        return person, Actor(via=RequestVia.API, api_key=api_key)


class PersonExportApi(_PersonApi):
    @extend_schema(
        summary="Export a person's data",
        description=(
            "Everything the company holds about the person (GDPR art. 15 and 20): contacts "
            "with their properties, invitations, deliveries, answers with their follow-up "
            "threads, suppressions, recurring-survey memberships and widget showings. "
            "Nobody found: empty lists. Recorded (who, when, by which kind of identifier)."
        ),
        operation_id="people_export",
        tags=["people"],
        request=PersonInputSerializer,
        responses={200: ExportOutputSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        person, actor = self.person(request)
        return Response(person_export_recorded(company=self.company, person=person, actor=actor))


class PersonEraseApi(_PersonApi):
    @extend_schema(
        summary="Erase a person's data",
        description=(
            "Removes or irreversibly anonymises everything the company holds about the "
            "person (GDPR art. 17). Their scores stay counted in metrics, linked to nobody; "
            "a suppressed address stays suppressed as a hash only. Cannot be undone. "
            "Returns the erasure's record (what kind, when, how many rows of each kind)."
        ),
        operation_id="people_erase",
        tags=["people"],
        request=PersonInputSerializer,
        responses={200: ErasureOutputSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        person, actor = self.person(request)
        record = person_erase(company=self.company, person=person, actor=actor)
        return Response(ErasureOutputSerializer(record).data)
