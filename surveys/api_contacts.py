"""Contacts and contact imports in the REST API: thin views over services and selectors."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api_parsers import JSONParser
from companies.api_views import CompanyAPIView
from companies.models import Role
from companies.schema import error_responses
from surveys.imports import contact_import_create, contact_import_start
from surveys.models import Contact, ContactImport
from surveys.selectors import contact_get, contact_import_get, contacts_list
from surveys.services.contacts import contact_delete, contact_update, contact_upsert
from surveys.views_contacts import import_errors_response

IMPORT_ERRORS_IN_API = 20


class _PropertiesField(serializers.DictField):
    """Free properties: name → text, number or true/false (checked by the service)."""


@extend_schema_serializer(component_name="Contact")
class ContactOutputSerializer(serializers.ModelSerializer[Contact]):
    id = serializers.CharField(source="public_id", read_only=True)
    properties = serializers.DictField(read_only=True)

    class Meta:
        model = Contact
        fields: ClassVar[list[str]] = [
            "id",
            "email",
            "phone",
            "name",
            "language",
            "time_zone",
            "external_id",
            "properties",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ContactInputSerializer(serializers.Serializer[None]):
    """Shape only: the services validate and normalise (email, E.164 phone, language…)."""

    email = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    language = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="en, ru or kk"
    )
    time_zone = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="IANA name, e.g. Asia/Almaty"
    )
    external_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    properties = _PropertiesField(
        required=False,
        allow_null=True,
        child=serializers.JSONField(),
        help_text="Merged into the contact's properties; a null value removes that property.",
    )

    def fields_given(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if v is not None}


class ContactListCreateApi(CompanyAPIView):
    """Contacts of the key's company: list with filters, create-or-update (upsert)."""

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN  # a full-access key

    @extend_schema(
        summary="List contacts",
        description=(
            "Newest first, cursor-paginated. `property` filters take `key=value` (repeatable); "
            "`30` matches both the text and the number."
        ),
        operation_id="contacts_list",
        tags=["contacts"],
        parameters=[
            OpenApiParameter("email", OpenApiTypes.STR, description="Exact email address."),
            OpenApiParameter("external_id", OpenApiTypes.STR),
            OpenApiParameter("search", OpenApiTypes.STR, description="Name, email, phone, id."),
            OpenApiParameter(
                "property", OpenApiTypes.STR, many=True, description="`key=value`, repeatable."
            ),
        ],
        responses={200: ContactOutputSerializer(many=True), **error_responses(401, 429)},
    )
    def get(self, request: Request) -> Response:
        properties = {}
        for item in request.query_params.getlist("property"):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise exceptions.ValidationError({"property": [_("Use key=value.")]})
            properties[key.strip()] = value
        queryset: QuerySet[Contact] = contacts_list(
            company=self.company,
            search=request.query_params.get("search"),
            properties=properties,
        )
        if email := request.query_params.get("email"):
            queryset = queryset.filter(email=email.strip().lower())
        if external_id := request.query_params.get("external_id"):
            queryset = queryset.filter(external_id=external_id)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ContactOutputSerializer(page, many=True).data)

    @extend_schema(
        summary="Create or update a contact",
        description=(
            "Matches an existing contact by `external_id`, then by `email`, and updates it "
            "(only the fields sent; properties are merged). Answers 201 when created, 200 when "
            "updated. A contact needs an email or a phone. Needs a full-access key."
        ),
        operation_id="contacts_upsert",
        tags=["contacts"],
        request=ContactInputSerializer,
        responses={
            200: ContactOutputSerializer,
            201: ContactOutputSerializer,
            **error_responses(400, 401, 403, 429),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ContactInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact, created = contact_upsert(company=self.company, **serializer.fields_given())
        return Response(
            ContactOutputSerializer(contact).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ContactDetailApi(CompanyAPIView):
    """One contact: read, change (PATCH), delete."""

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN

    def _contact(self, contact_id: str) -> Contact:
        contact = contact_get(company=self.company, public_id=contact_id)
        if contact is None:
            raise exceptions.NotFound(_("No such contact."))
        return contact

    @extend_schema(
        summary="One contact",
        operation_id="contacts_retrieve",
        tags=["contacts"],
        responses={200: ContactOutputSerializer, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, contact_id: str) -> Response:
        return Response(ContactOutputSerializer(self._contact(contact_id)).data)

    @extend_schema(
        summary="Change a contact",
        description="Only the fields sent change; properties are merged (null removes one).",
        operation_id="contacts_partial_update",
        tags=["contacts"],
        request=ContactInputSerializer,
        responses={200: ContactOutputSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def patch(self, request: Request, contact_id: str) -> Response:
        contact = self._contact(contact_id)
        serializer = ContactInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        # Explicit nulls clear a field here (except properties: null means "no change").
        fields = {
            k: ("" if v is None else v)
            for k, v in serializer.validated_data.items()
            if not (k == "properties" and v is None)
        }
        contact = contact_update(company=self.company, contact=contact, **fields)
        return Response(ContactOutputSerializer(contact).data)

    @extend_schema(
        summary="Delete a contact",
        description="Its invitations go too; its responses stay, no longer linked to anyone.",
        operation_id="contacts_destroy",
        tags=["contacts"],
        responses={204: None, **error_responses(401, 403, 404, 429)},
    )
    def delete(self, request: Request, contact_id: str) -> Response:
        contact_delete(company=self.company, contact=self._contact(contact_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="ContactImportError")
class ImportErrorSerializer(serializers.Serializer[None]):
    line = serializers.IntegerField(help_text="Row number as a spreadsheet shows it (header = 1).")
    column = serializers.CharField()
    reason = serializers.CharField()
    warning = serializers.BooleanField(
        required=False,
        help_text="Present (true) when the row was imported all the same, without what the "
        "reason names (e.g. a malformed phone beside a valid email).",
    )


@extend_schema_serializer(component_name="ContactImport")
class ContactImportOutputSerializer(serializers.ModelSerializer[ContactImport]):
    id = serializers.CharField(source="public_id", read_only=True)
    mapping = serializers.DictField(child=serializers.CharField(), read_only=True)
    headers = serializers.ListField(child=serializers.CharField(), read_only=True)
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = ContactImport
        fields: ClassVar[list[str]] = [
            "id",
            "file_name",
            "status",
            "headers",
            "mapping",
            "rows_total",
            "created_count",
            "updated_count",
            "invalid_count",
            "errors",
            "errors_url",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "errors" is the name clients read, but a declared field of that name would hide
        # Serializer.errors: add it here instead.
        fields = super().get_fields()
        fields["errors"] = serializers.SerializerMethodField(method_name="first_errors")
        return fields

    @extend_schema_field(ImportErrorSerializer(many=True))
    def first_errors(self, obj: ContactImport) -> list[dict[str, Any]]:
        return list(obj.errors[:IMPORT_ERRORS_IN_API])

    @extend_schema_field(OpenApiTypes.URI)
    def get_errors_url(self, obj: ContactImport) -> str:
        path = reverse("api-contact-import-errors", kwargs={"import_id": obj.public_id})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ContactImportCreateApi(CompanyAPIView):
    """Upload a CSV or XLSX file of contacts; the import runs in the background."""

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema_serializer(component_name="ContactImportCreate")
    class InputSerializer(serializers.Serializer[None]):
        file = serializers.FileField(help_text=".csv (UTF-8 or Windows-1251) or .xlsx")
        mapping = serializers.CharField(
            required=False,
            help_text=(
                'JSON object column header → target: "email", "phone", "name", "language", '
                '"time_zone", "external_id", "first_name" and "last_name" (joined into the '
                'name), "properties" (name=value pairs, one per line or separated by ";"), '
                '"property", "property:<name>" or "ignore". '
                "Columns left out are detected from their header."
            ),
        )

    @extend_schema(
        summary="Import contacts from a file",
        description=(
            "Multipart upload. Answers 202 with the import (status `running`); poll "
            "`GET /api/v1/contact-imports/{id}/` for counts and errors. Rows are matched by "
            "external id, then email: existing contacts are updated, never duplicated. Needs a "
            "full-access key."
        ),
        operation_id="contact_imports_create",
        tags=["contacts"],
        request={"multipart/form-data": InputSerializer},
        responses={202: ContactImportOutputSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mapping = None
        if raw := serializer.validated_data.get("mapping"):
            try:
                mapping = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise exceptions.ValidationError({"mapping": [_("Not valid JSON.")]}) from exc
        contact_import = contact_import_create(
            company=self.company, upload=serializer.validated_data["file"]
        )
        try:
            contact_import_start(
                company=self.company, contact_import=contact_import, mapping=mapping
            )
        except DjangoValidationError:
            # A refused mapping leaves nothing behind (no half-made import, no stored file).
            contact_import.file.delete(save=False)
            contact_import.delete()
            raise
        data = ContactImportOutputSerializer(contact_import, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class ContactImportDetailApi(CompanyAPIView):
    """One import: status, counts and the first errors."""

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN

    @extend_schema(
        summary="One contact import",
        description=(
            f"Counts so far (updated after every chunk of rows), the first "
            f"{IMPORT_ERRORS_IN_API} invalid rows, and `errors_url`: every invalid row as CSV."
        ),
        operation_id="contact_imports_retrieve",
        tags=["contacts"],
        responses={200: ContactImportOutputSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request: Request, import_id: str) -> Response:
        contact_import = _import(self, import_id)
        return Response(
            ContactImportOutputSerializer(contact_import, context={"request": request}).data
        )


class ContactImportErrorsApi(CompanyAPIView):
    """Every invalid row of an import as CSV: the original cells, ``error_line``, ``error``."""

    required_role = Role.VIEWER
    required_write_role = Role.ADMIN

    @extend_schema(
        summary="Invalid rows of an import (CSV)",
        operation_id="contact_imports_errors",
        tags=["contacts"],
        responses={
            (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, description="CSV"),
            **error_responses(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, import_id: str) -> HttpResponseBase:
        return import_errors_response(_import(self, import_id))


def _import(view: CompanyAPIView, import_id: str) -> ContactImport:
    contact_import = contact_import_get(company=view.company, public_id=import_id)
    if contact_import is None:
        raise exceptions.NotFound(_("No such import."))
    return contact_import
