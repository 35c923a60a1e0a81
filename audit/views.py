"""The audit log page and its CSV export (owners and admins)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import tzinfo

from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from audit.forms import AuditFilterForm
from audit.models import TARGET_TYPES, AuditEntry
from audit.selectors import audit_entries_iter, audit_page, cursor_parse
from audit.services import audit_download
from companies.models import Company, Role
from companies.permissions import company_view
from companies.spreadsheets import spreadsheet_row
from companies.zones import company_zone

FILTER_NAMES = ("action", "actor", "target_type", "since", "until")

CSV_HEADER = [
    "time",
    "action",
    "actor_kind",
    "actor",
    "ip",
    "object_type",
    "object_id",
    "object",
    "changes",
]


def _form(request: HttpRequest, company: Company) -> AuditFilterForm:
    data = request.GET if any(request.GET.get(name) for name in FILTER_NAMES) else None
    form = AuditFilterForm(data, company=company)
    form.is_valid()
    return form


def _filter_query(request: HttpRequest) -> str:
    """The filters alone (no cursor), for the export link and the next page."""
    query = QueryDict(mutable=True)
    for name in FILTER_NAMES:
        if request.GET.get(name):
            query[name] = request.GET[name]
    return query.urlencode()


@require_safe
@company_view(Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    company: Company = request.company  # type: ignore[attr-defined]
    form = _form(request, company)
    page = audit_page(
        company=company,
        filters=form.filters(),
        after=cursor_parse(request.GET.get("after", "")),
    )
    return render(
        request,
        "audit/log.html",
        {
            "form": form,
            "page": page,
            "target_types": TARGET_TYPES,
            "filter_query": _filter_query(request),
        },
    )


def _csv_rows(entries: Iterator[AuditEntry], zone: tzinfo) -> Iterator[list[object]]:
    # The zone is passed: the body streams after the middleware has deactivated it.
    for entry in entries:
        yield spreadsheet_row(
            [
                timezone.localtime(entry.created_at, zone).isoformat(),
                entry.action,
                entry.actor_kind,
                entry.actor_label,
                entry.ip or "",
                entry.target_type,
                entry.target_id,
                entry.target_label,
                json.dumps(entry.changes, ensure_ascii=False, sort_keys=True)
                if entry.changes
                else "",
            ]
        )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_stream(rows: Iterator[list[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff"  # Excel reads UTF-8 (Cyrillic names) only with the byte-order mark
    yield writer.writerow(CSV_HEADER)
    for row in rows:
        yield writer.writerow(row)


@require_safe
@company_view(Role.ADMIN)
def audit_log_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered log as CSV, every cell formula-escaped; the download is itself logged."""
    company: Company = request.company  # type: ignore[attr-defined]
    filters = _form(request, company).filters()
    name = f"audit-{company.slug}-{timezone.localtime():%Y%m%d-%H%M}.csv"
    # Recorded first: the export then lists its own download.
    audit_download(
        company=company,
        kind="audit_log",
        file_name=name,
        filters=QueryDict(_filter_query(request)).dict(),
    )
    rows = _csv_rows(audit_entries_iter(company=company, filters=filters), company_zone(company))
    response = StreamingHttpResponse(_csv_stream(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
