"""Company pages under /c/<company_slug>/responses/: the list of answers with an NPS summary."""

from __future__ import annotations

import base64
import zoneinfo
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from companies.models import Company, Role
from companies.permissions import company_view

# dashboards.metrics is pure arithmetic with no project imports: the one place the NPS
# formula lives, used here for the list's summary (no import cycle).
from dashboards.metrics import nps_summary
from responses.exports import csv_stream, export_rows, xlsx_file
from responses.models import Category, Response
from responses.selectors import responses_list, score_counts, surveys_with_responses
from surveys.models import Survey

PAGE_SIZE = 50


def _cursor(response: Response) -> str:
    raw = f"{response.created_at.isoformat()}|{response.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_cursor(value: str) -> tuple[datetime, int] | None:
    """The (created_at, id) of the last row of the previous page; None if malformed."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _sep, pk = raw.partition("|")
        return datetime.fromisoformat(stamp), int(pk)
    except (ValueError, UnicodeDecodeError):
        return None


@company_view(Role.VIEWER)
def response_list(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered by survey and category, keyset-paginated (constant queries).

    Respondents of anonymous surveys are never shown.
    """
    company = request.company  # type: ignore[attr-defined]
    surveys, survey, category = _filters(request, company)
    rows = responses_list(company=company, survey=survey, category=category or None)
    after = _parse_cursor(request.GET.get("after", ""))
    if after is not None:
        stamp, pk = after
        rows = rows.filter(created_at__lte=stamp).exclude(created_at=stamp, id__gte=pk)
    page = list(rows[: PAGE_SIZE + 1])
    has_next = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    next_query = ""
    if has_next:
        query = request.GET.copy()
        query["after"] = _cursor(page[-1])
        next_query = query.urlencode()
    summary = nps_summary(score_counts(company=company, survey=survey))
    context: dict[str, Any] = {
        "surveys": surveys,
        "survey": survey,
        "category": category,
        "categories": Category.choices,
        "responses": page,
        "next_query": next_query,
        "is_first_page": after is None,
        "summary": summary,
        "export_query": _filter_query(request),
    }
    return render(request, "responses/list.html", context)


def _filters(request: HttpRequest, company: Company) -> tuple[Sequence[Survey], Survey | None, str]:
    """The list's filters from the query string: (the surveys, the chosen one, category)."""
    surveys = surveys_with_responses(company=company)
    by_id = {s.public_id: s for s in surveys}
    survey = by_id.get(request.GET.get("survey", ""))
    category = request.GET.get("category", "")
    if category not in Category.values:
        category = ""
    return surveys, survey, category


def _filter_query(request: HttpRequest) -> str:
    """The query string of the filters alone (no page cursor), for the export links."""
    query = QueryDict(mutable=True)
    for name in ("survey", "category"):
        if request.GET.get(name):
            query[name] = request.GET[name]
    return query.urlencode()


EXPORT_FORMATS = {"csv", "xlsx"}


@require_safe
@company_view(Role.VIEWER)
def response_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The filtered responses as CSV or XLSX, streamed (see responses/exports.py)."""
    if fmt not in EXPORT_FORMATS:
        raise Http404
    company = request.company  # type: ignore[attr-defined]
    _surveys, survey, category = _filters(request, company)
    rows = export_rows(
        company=company,
        responses=responses_list(company=company, survey=survey, category=category or None),
    )
    stamp = timezone.localtime(timezone=zoneinfo.ZoneInfo(company.time_zone or "UTC"))
    name = f"responses-{company.slug}-{stamp:%Y%m%d-%H%M}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(csv_stream(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return FileResponse(
        xlsx_file(rows),
        as_attachment=True,
        filename=name,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
