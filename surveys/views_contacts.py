"""Contact pages under /c/<company_slug>/contacts/: list, detail, edit, import.

The tenancy middleware has checked membership and the declared role already (viewer+ reads,
manager+ writes). Views parse input, call a selector or service, and render.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import audit_download
from companies.models import Role
from companies.permissions import company_view
from companies.spreadsheets import spreadsheet_row
from surveys.forms_contacts import ContactForm, ImportMappingForm, ImportUploadForm
from surveys.imports import (
    REPORT_ERROR,
    REPORT_LINE,
    contact_import_create,
    contact_import_samples,
    contact_import_start,
)
from surveys.models import Contact, ContactImport, ImportStatus
from surveys.selectors import (
    autopilot_memberships_of,
    autopilot_programs_list,
    contact_get,
    contact_import_get,
    contact_imports_list,
    contact_invitations,
    contacts_list,
)
from surveys.services.autopilot import autopilot_import_join
from surveys.services.contacts import contact_delete, contact_update, contact_upsert

if TYPE_CHECKING:
    from companies.models import Company, Membership, User

    class CompanyRequest(HttpRequest):
        company: Company
        membership: Membership
        user: User
else:
    CompanyRequest = HttpRequest

PAGE_SIZE = 50


def _contact_or_404(request: CompanyRequest, contact_id: str) -> Contact:
    contact = contact_get(company=request.company, public_id=contact_id)
    if contact is None:
        raise Http404(_("No such contact."))
    return contact


def _import_or_404(request: CompanyRequest, import_id: str) -> ContactImport:
    contact_import = contact_import_get(company=request.company, public_id=import_id)
    if contact_import is None:
        raise Http404(_("No such import."))
    return contact_import


# --- Keyset pagination ---------------------------------------------------------------------------


def _cursor_encode(contact: Contact) -> str:
    raw = f"{contact.created_at.isoformat()}|{contact.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_after(queryset: QuerySet[Contact], cursor: str) -> QuerySet[Contact]:
    """Rows after the cursor in (-created_at, -id) order: the same cost on any page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.split("|")
        created_at, last_id = dt.datetime.fromisoformat(stamp), int(pk)
    except (ValueError, UnicodeDecodeError):
        return queryset
    return queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=last_id))


def _property_filters(values: list[str]) -> dict[str, str]:
    filters = {}
    for item in values:
        key, sep, value = item.partition("=")
        if sep and key.strip():
            filters[key.strip()] = value.strip()
    return filters


# --- Contacts ------------------------------------------------------------------------------------


@company_view(Role.VIEWER)
@require_http_methods(["GET"])
def contact_list(request: CompanyRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    prop_params = [p for p in request.GET.getlist("prop") if p.strip()]
    queryset = contacts_list(
        company=request.company, search=search, properties=_property_filters(prop_params)
    )
    cursor = request.GET.get("after", "")
    if cursor:
        queryset = _cursor_after(queryset, cursor)
    page = list(queryset[: PAGE_SIZE + 1])
    next_url = None
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        params: list[tuple[str, str]] = [("q", search)] if search else []
        params += [("prop", p) for p in prop_params]
        params.append(("after", _cursor_encode(page[-1])))
        next_url = "?" + urlencode(params)
    return render(
        request,
        "contacts/list.html",
        {
            "contacts": page,
            "search": search,
            "prop_filters": prop_params,
            "next_url": next_url,
            "is_first_page": not cursor,
        },
    )


def _service_errors_to_form(form: ContactForm, exc: ValidationError) -> None:
    errors: dict[str | None, list[str]] = {None: exc.messages}
    if hasattr(exc, "error_dict"):
        errors = {field: list(msgs) for field, msgs in exc.message_dict.items()}
    for field, field_messages in errors.items():
        target = field if field in form.fields else None
        for message in field_messages:
            form.add_error(target, message)


@company_view(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def contact_create(request: CompanyRequest) -> HttpResponse:
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if not data["email"] and not data["phone"]:
            form.add_error("email", _("A contact needs an email address or a phone number."))
        else:
            try:
                # A form creates: matching an existing person would surprise here.
                fields = {k: (v or None) for k, v in data.items() if k != "properties"}
                existing = [
                    f
                    for f in ("email", "external_id")
                    if fields.get(f)
                    and Contact.objects.for_company(request.company)
                    .filter(**{f: str(fields[f]).strip().lower() if f == "email" else fields[f]})
                    .exists()
                ]
                if existing:
                    raise ValidationError(
                        {f: [_("Another contact already has this value.")] for f in existing}
                    )
                contact, _created = contact_upsert(
                    company=request.company, properties=data["properties"], **fields
                )
            except ValidationError as exc:
                _service_errors_to_form(form, exc)
            else:
                messages.success(request, _("Contact added."))
                return redirect(
                    "contacts:detail",
                    company_slug=request.company.slug,
                    contact_id=contact.public_id,
                )
    return render(
        request,
        "contacts/form.html",
        {"form": form, "contact": None},
        status=400 if form.errors else 200,
    )


@company_view(Role.VIEWER)
@require_http_methods(["GET"])
def contact_detail(request: CompanyRequest, contact_id: str) -> HttpResponse:
    from notifications.selectors import suppressed_addresses

    contact = _contact_or_404(request, contact_id)
    suppressed: list[tuple[str, str]] = []
    for channel, address in (("email", contact.email), ("sms", contact.phone)):
        if address and suppressed_addresses(
            company=request.company, channel=channel, addresses=[address]
        ):
            suppressed.append((channel, address))
    return render(
        request,
        "contacts/detail.html",
        {
            "contact": contact,
            "invitations": contact_invitations(company=request.company, contact=contact),
            "suppressed": suppressed,
            "memberships": autopilot_memberships_of(company=request.company, contact=contact),
        },
    )


@company_view(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def contact_edit(request: CompanyRequest, contact_id: str) -> HttpResponse:
    contact = _contact_or_404(request, contact_id)
    if request.method != "POST":
        return render(
            request,
            "contacts/form.html",
            {"form": ContactForm.for_contact(contact), "contact": contact},
        )
    form = ContactForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        # The form shows every property: one left out was removed.
        properties: dict[str, Any] = dict.fromkeys(contact.properties)
        properties.update(data["properties"])
        fields = {k: v for k, v in data.items() if k != "properties"}
        try:
            contact_update(
                company=request.company, contact=contact, properties=properties, **fields
            )
        except ValidationError as exc:
            contact.refresh_from_db()
            _service_errors_to_form(form, exc)
        else:
            messages.success(request, _("Contact saved."))
            return redirect(
                "contacts:detail", company_slug=request.company.slug, contact_id=contact.public_id
            )
    return render(request, "contacts/form.html", {"form": form, "contact": contact}, status=400)


@company_view(Role.MANAGER)
@require_POST
def contact_delete_view(request: CompanyRequest, contact_id: str) -> HttpResponse:
    contact = _contact_or_404(request, contact_id)
    contact_delete(company=request.company, contact=contact)
    messages.success(request, _("Contact deleted."))
    return redirect("contacts:list", company_slug=request.company.slug)


# --- Import --------------------------------------------------------------------------------------


@company_view(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def import_upload(request: CompanyRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact_import = contact_import_create(
                company=request.company, upload=form.cleaned_data["file"], created_by=request.user
            )
        except ValidationError as exc:
            for message in exc.message_dict.get("file", exc.messages):
                form.add_error("file", message)
        else:
            # The file is read by a worker: the import's page waits for it, then maps.
            return redirect(
                "contacts:import_detail",
                company_slug=request.company.slug,
                import_id=contact_import.public_id,
            )
    return render(
        request,
        "contacts/import_upload.html",
        {"form": form, "imports": contact_imports_list(company=request.company)[:10]},
        status=400 if form.errors else 200,
    )


@company_view(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def import_mapping(request: CompanyRequest, import_id: str) -> HttpResponse:
    contact_import = _import_or_404(request, import_id)
    if contact_import.status != ImportStatus.PENDING:
        return redirect(
            "contacts:import_detail", company_slug=request.company.slug, import_id=import_id
        )
    form = ImportMappingForm(
        request.POST or None,
        headers=contact_import.headers,
        mapping=contact_import.mapping,
        samples=contact_import_samples(contact_import=contact_import),
    )
    programs = list(autopilot_programs_list(company=request.company))
    if request.method == "POST" and form.is_valid():
        # Optional: the imported contacts join a recurring survey once the import is done.
        joins = [p for p in programs if p.public_id == request.POST.get("autopilot")]
        try:
            with transaction.atomic():
                contact_import_start(
                    company=request.company, contact_import=contact_import, mapping=form.mapping()
                )
                for program in joins:
                    autopilot_import_join(
                        company=request.company, program=program, contact_import=contact_import
                    )
        except ValidationError as exc:
            for message in exc.message_dict.get("mapping", exc.messages):
                form.add_error(None, message)
        else:
            return redirect(
                "contacts:import_detail", company_slug=request.company.slug, import_id=import_id
            )
    return render(
        request,
        "contacts/import_mapping.html",
        {"form": form, "import": contact_import, "autopilot_programs": programs},
        status=400 if form.errors else 200,
    )


@company_view(Role.MANAGER)
@require_http_methods(["GET"])
def import_detail(request: CompanyRequest, import_id: str) -> HttpResponse:
    """The import's progress: reading the file (polled), then the mapping screen once the
    header is read, then the counts while it runs (polled) and the result."""
    contact_import = _import_or_404(request, import_id)
    if contact_import.status == ImportStatus.PENDING:
        mapping_url = reverse(
            "contacts:import_mapping",
            kwargs={"company_slug": request.company.slug, "import_id": import_id},
        )
        if request.headers.get("HX-Request"):
            # The page's poll: a whole page load, not a swap of part of it.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = mapping_url
            return response
        return redirect(mapping_url)
    return render(request, "contacts/import_detail.html", {"import": contact_import})


@company_view(Role.MANAGER)
@require_http_methods(["GET"])
def import_errors(request: CompanyRequest, import_id: str) -> HttpResponseBase:
    return import_errors_response(_import_or_404(request, import_id))


def import_errors_response(contact_import: ContactImport) -> HttpResponseBase:
    """The error report as a CSV download (just the header row when there were no errors)."""
    filename = f"{contact_import.file_name.rsplit('.', 1)[0]}-errors.csv"
    audit_download(company=contact_import.company, kind="contact_import_errors", file_name=filename)
    if contact_import.error_report:
        return FileResponse(
            contact_import.error_report.open("rb"),
            as_attachment=True,
            filename=filename,
            content_type="text/csv; charset=utf-8",
        )
    buffer = io.StringIO()
    csv.writer(buffer).writerow(
        spreadsheet_row([*contact_import.headers, REPORT_LINE, REPORT_ERROR])
    )
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    return response
