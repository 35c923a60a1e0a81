"""Company pages under /c/<company_slug>/responses/: the list of answers with an NPS summary."""

from __future__ import annotations

import base64
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
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

from audit.services import audit_download
from companies.models import Company, Role
from companies.permissions import company_view

# dashboards.metrics is pure arithmetic with no project imports: the one place the NPS
# formula lives, used here for the list's summary (no import cycle).
from dashboards.metrics import nps_report
from responses.exports import csv_stream, export_rows, xlsx_file
from responses.models import Category, Response
from responses.selectors import responses_list, score_counts_of, surveys_with_responses
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
    filters = _ListFilters.parse(request, company)
    survey = filters.survey
    rows = filters.responses(company)
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
    # The figures are of the responses the filters select, not of the whole survey.
    summary = nps_report(score_counts_of(company=company, responses=filters.responses(company)))
    context: dict[str, Any] = {
        "filters": filters,
        "score_choices": range(11),
        "surveys": filters.surveys,
        "survey": survey,
        "category": filters.category,
        "categories": Category.choices,
        "responses": page,
        "next_query": next_query,
        "is_first_page": after is None,
        "summary": summary,
        "filtered": filters.active,
        "export_query": _filter_query(request),
    }
    return render(request, "responses/list.html", context)


@dataclass
class _ListFilters:
    """The list's filters from the query string; anything malformed is simply not applied."""

    surveys: Sequence[Survey]
    survey: Survey | None = None
    category: str = ""
    score: int | None = None
    since: date | None = None
    until: date | None = None
    search: str = ""
    property_name: str = ""
    property_value: str = ""
    with_comment: bool = False

    @classmethod
    def parse(cls, request: HttpRequest, company: Company) -> _ListFilters:
        get = request.GET
        surveys = surveys_with_responses(company=company)
        by_id = {s.public_id: s for s in surveys}
        category = get.get("category", "")
        score = get.get("score", "")
        return cls(
            surveys=surveys,
            survey=by_id.get(get.get("survey", "")),
            category=category if category in Category.values else "",
            score=int(score) if score.isdigit() and int(score) <= 10 else None,
            since=_day(get.get("since", "")),
            until=_day(get.get("until", "")),
            search=get.get("q", "").strip()[:200],
            property_name=get.get("property", "").strip()[:64],
            property_value=get.get("value", "").strip()[:200],
            with_comment=get.get("with_comment") == "1",
        )

    @property
    def active(self) -> bool:
        """Whether the list is narrowed beyond a survey (the summary then says so)."""
        return bool(
            self.category
            or self.score is not None
            or self.since
            or self.until
            or self.search
            or self.property_name
            or self.with_comment
        )

    def responses(self, company: Company) -> QuerySet[Response]:
        zone = zoneinfo.ZoneInfo(company.time_zone or "UTC")
        return responses_list(
            company=company,
            survey=self.survey,
            category=self.category or None,
            score=self.score,
            since=None if self.since is None else datetime.combine(self.since, time.min, zone),
            until=None
            if self.until is None
            else datetime.combine(self.until + timedelta(days=1), time.min, zone),
            search=self.search,
            property_name=self.property_name,
            property_value=self.property_value if self.property_name else "",
            with_comment=self.with_comment,
        )


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


FILTER_NAMES = ("survey", "category", "score", "since", "until", "q", "property", "value")


def _filter_query(request: HttpRequest) -> str:
    """The query string of the filters alone (no page cursor), for the export links."""
    query = QueryDict(mutable=True)
    for name in (*FILTER_NAMES, "with_comment"):
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
    rows = export_rows(
        company=company, responses=_ListFilters.parse(request, company).responses(company)
    )
    stamp = timezone.localtime(timezone=zoneinfo.ZoneInfo(company.time_zone or "UTC"))
    name = f"responses-{company.slug}-{stamp:%Y%m%d-%H%M}.{fmt}"
    audit_download(
        company=company,
        kind="responses",
        file_name=name,
        filters=QueryDict(_filter_query(request)).dict(),
    )
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
