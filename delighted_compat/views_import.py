"""The Delighted import pages under /c/<company_slug>/import/delighted/ (manager and up).

Upload several export files at once; check what each file is and what its columns mean (the
page says which headers were not recognised); start; watch progress; download the rejected
rows. Views parse input, call the importer's services or the selectors, and render.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit.services import audit_download
from companies.models import Role
from companies.permissions import company_view
from companies.spreadsheets import spreadsheet_row
from delighted_compat.api.selectors import default_survey_get
from delighted_compat.forms_import import DelightedFileForm, DelightedUploadForm
from delighted_compat.importer import (
    delighted_import_create,
    delighted_import_samples,
    delighted_import_start,
    suggest_mapping,
    unrecognised_headers,
)
from delighted_compat.models import DelightedImport, DelightedImportStatus
from delighted_compat.selectors import (
    delighted_batch,
    delighted_import_get,
    delighted_recent_batches,
)
from surveys.models import Survey

if TYPE_CHECKING:
    from companies.models import Company, Membership, User

    class CompanyRequest(HttpRequest):
        company: Company
        membership: Membership
        user: User
else:
    CompanyRequest = HttpRequest


def _batch_or_404(request: CompanyRequest, batch_id: str) -> list[DelightedImport]:
    files = delighted_batch(company=request.company, batch=batch_id)
    if not files:
        raise Http404(_("No such import."))
    return files


@company_view(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def delighted_upload(request: CompanyRequest) -> HttpResponse:
    form = DelightedUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        batch = uuid.uuid4().hex
        try:
            with transaction.atomic():  # one unreadable file: none of them is kept
                for upload in form.cleaned_data["exports"]:
                    delighted_import_create(
                        company=request.company, upload=upload, batch=batch, created_by=request.user
                    )
        except ValidationError as exc:
            for message in exc.message_dict.get("file", exc.messages):
                form.add_error("exports", message)
        else:
            return redirect(
                "delighted_import:batch", company_slug=request.company.slug, batch_id=batch
            )
    return render(
        request,
        "delighted_compat/import_upload.html",
        {"form": form, "batches": delighted_recent_batches(company=request.company)},
        status=400 if form.errors else 200,
    )


@company_view(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def delighted_batch_view(request: CompanyRequest, batch_id: str) -> HttpResponse:
    files = _batch_or_404(request, batch_id)
    pending = [f for f in files if f.status == DelightedImportStatus.PENDING]
    surveys = Survey.objects.for_company(request.company).order_by("name")
    default_survey = default_survey_get(company=request.company)
    data = request.POST if request.method == "POST" and pending else None
    forms = [
        DelightedFileForm(
            data,
            imp=f,
            surveys=surveys,
            unknown=unrecognised_headers(f),
            samples=delighted_import_samples(imp=f),
            default_survey=default_survey,
        )
        for f in pending
    ]
    errors: list[str] = []
    if data is not None and all(form.is_valid() for form in forms):
        if _kinds_changed(request, forms):
            return redirect(request.path)  # columns to check again for the new kind
        try:
            with transaction.atomic():  # every file can start, or none does
                for form in forms:
                    delighted_import_start(
                        company=request.company,
                        imp=form.imp,
                        kind=form.cleaned_data["kind"],
                        mapping=form.mapping(),
                        survey=form.cleaned_data["survey"],
                    )
        except ValidationError as exc:
            errors = exc.messages
        else:
            return redirect(request.path)
    running = any(f.status == DelightedImportStatus.RUNNING for f in files)
    return render(
        request,
        "delighted_compat/import_batch.html",
        {
            "files": files,
            "forms": forms,
            "errors": errors,
            "running": running,
            "batch_id": batch_id,
        },
        status=400 if errors or any(form.errors for form in forms) else 200,
    )


def _kinds_changed(request: CompanyRequest, forms: list[DelightedFileForm]) -> bool:
    """Files the user said are of another kind get that kind's column suggestions, to check."""
    changed = False
    for form in forms:
        kind = form.cleaned_data["kind"]
        if kind and kind != form.imp.kind:
            mapping, _unknown = suggest_mapping(form.imp.headers, kind)
            DelightedImport.objects.for_company(request.company).filter(
                pk=form.imp.pk, status=DelightedImportStatus.PENDING
            ).update(kind=kind, mapping=mapping)
            changed = True
    return changed


@company_view(Role.MANAGER)
@require_http_methods(["GET"])
def delighted_errors(request: CompanyRequest, delighted_import_id: str) -> HttpResponseBase:
    """The rejected rows of one file as CSV (just the header row when there were none)."""
    imp = delighted_import_get(company=request.company, public_id=delighted_import_id)
    if imp is None:
        raise Http404(_("No such import."))
    filename = f"{imp.file_name.rsplit('.', 1)[0]}-errors.csv"
    audit_download(company=request.company, kind="delighted_import_errors", file_name=filename)
    if imp.error_report:
        return FileResponse(
            imp.error_report.open("rb"),
            as_attachment=True,
            filename=filename,
            content_type="text/csv; charset=utf-8",
        )
    buffer = io.StringIO()
    csv.writer(buffer).writerow(spreadsheet_row([*imp.headers, "error_line", "error"]))
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    return response
