"""Revenue at risk and the peer benchmark: two figures beside the NPS on the dashboard.

**Revenue at risk.** When a company marks a numeric contact property as revenue (its
``DashboardSettings.revenue_property``), the sum of that property over the customers whose
latest answer in the period is a detractor's, and apart over passives. Each customer counts
once (their latest answer decides), with the value the property had when they answered;
anonymous surveys never count (nobody is named there). One aggregate query.

**Peer benchmark.** Companies of one industry that opted in (``peer_benchmark``) each
contribute their NPS over the period, from the rollups, when it rests on at least
``PEER_MIN_ANSWERS`` answers. The benchmark is shown only when at least
``PEER_MIN_COMPANIES`` companies contribute, as the median and quartiles rounded to
``PEER_ROUNDING`` NPS points: with five or more companies and rounded quartiles, no single
company's figure can be read off it. Two aggregate queries whatever the number of companies.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, FloatField, OuterRef, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from audit.models import AuditAction
from audit.services import audit_record, changes_between, snapshot
from companies.models import Company
from dashboards.metrics import nps_value
from dashboards.models import DashboardSettings, Rollup
from dashboards.selectors import day_bounds
from responses.models import Category, Response
from surveys.models import Survey

PEER_MIN_COMPANIES = 5
PEER_MIN_ANSWERS = 30
PEER_ROUNDING = 5
# Contact properties a company may have rolled up for its segments.
MAX_SEGMENT_PROPERTIES = 5
# A JSON number as text (what KeyTextTransform gives for a number); other values are skipped.
_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def dashboard_settings_of(*, company: Company) -> DashboardSettings:
    found = DashboardSettings.objects.for_company(company).first()
    return found or DashboardSettings(company=company)


def dashboard_settings_update(
    *,
    company: Company,
    revenue_property: str,
    peer_benchmark: bool,
    segment_properties: list[str] | None = None,
) -> DashboardSettings:
    """Save the settings; ``segment_properties`` (None: unchanged) are rolled up from the
    next rollup fold on (dashboards/services.py), at most ``MAX_SEGMENT_PROPERTIES``."""
    defaults: dict[str, object] = {
        "revenue_property": revenue_property.strip()[:64],
        "peer_benchmark": peer_benchmark,
    }
    if segment_properties is not None:
        names = list(dict.fromkeys(n.strip()[:64] for n in segment_properties if n.strip()))
        if len(names) > MAX_SEGMENT_PROPERTIES:
            raise ValidationError(
                {
                    "segment_properties": _("At most %(n)d properties.")
                    % {"n": MAX_SEGMENT_PROPERTIES}
                }
            )
        defaults["segment_properties"] = names
    with transaction.atomic():
        before = snapshot(dashboard_settings_of(company=company), defaults)
        settings, _created = DashboardSettings.objects.for_company(company).update_or_create(
            company=company, defaults=defaults
        )
        changes = changes_between(before, snapshot(settings, defaults))
        if changes:
            audit_record(
                company=company,
                action=AuditAction.SETTINGS_UPDATED,
                target_type="dashboardsettings",
                changes=changes,
            )
    return settings


@dataclass(frozen=True)
class AtRisk:
    customers: int
    total: float


@dataclass(frozen=True)
class RevenueAtRisk:
    property_name: str
    detractors: AtRisk
    passives: AtRisk


def revenue_at_risk(
    *,
    company: Company,
    property_name: str,
    since: date,
    until: date,
    survey: Survey | None = None,
    channel: str | None = None,
) -> RevenueAtRisk | None:
    """See the module docstring; None when no revenue property is set."""
    if not property_name:
        return None
    start, end = day_bounds(company, since, until)
    scope = Response.objects.for_company(company).filter(
        created_at__gte=start,
        created_at__lt=end,
        contact__isnull=False,
        survey__anonymous=False,
    )
    if survey is not None:
        scope = scope.filter(survey=survey)
    if channel:
        scope = scope.filter(channel=channel)
    later = scope.filter(contact_id=OuterRef("contact_id"), created_at__gt=OuterRef("created_at"))
    latest = scope.exclude(Exists(later)).filter(
        category__in=[Category.DETRACTOR, Category.PASSIVE]
    )
    rows = (
        latest.annotate(_value=KeyTextTransform(property_name, "contact_properties"))
        .values("category")
        .annotate(
            customers=Count("contact_id", distinct=True),
            total=Sum(
                Cast(F("_value"), FloatField()),
                filter=Q(_value__regex=_NUMBER),
            ),
        )
        .order_by()
    )
    found = {row["category"]: AtRisk(row["customers"], row["total"] or 0.0) for row in rows}
    empty = AtRisk(0, 0.0)
    return RevenueAtRisk(
        property_name=property_name,
        detractors=found.get(Category.DETRACTOR, empty),
        passives=found.get(Category.PASSIVE, empty),
    )


@dataclass(frozen=True)
class PeerBenchmark:
    companies: int
    lower_quartile: int
    median: int
    upper_quartile: int


def _rounded(value: float) -> int:
    return int(PEER_ROUNDING * round(value / PEER_ROUNDING))


def peer_benchmark(*, company: Company, since: date, until: date) -> PeerBenchmark | None:
    """The opted-in peers' NPS over ``since``..``until`` (days, rollup buckets), or None when
    the company has not opted in or fewer than PEER_MIN_COMPANIES peers qualify."""
    if not dashboard_settings_of(company=company).peer_benchmark:
        return None
    peers = list(
        DashboardSettings.objects.unscoped(
            reason="peer benchmark: which companies of the industry opted in (ids only)"
        )
        .filter(peer_benchmark=True, company__industry=company.industry)
        .values_list("company_id", flat=True)
    )
    if len(peers) < PEER_MIN_COMPANIES:
        return None
    counts = (
        Rollup.objects.unscoped(
            reason="peer benchmark: per-company totals, only their quartiles are shown"
        )
        .filter(company_id__in=peers, day__gte=since, day__lte=until)
        .values("company_id")
        .annotate(
            n=Sum("count"),
            promoters=Sum("count", filter=Q(score__gte=9)),
            detractors=Sum("count", filter=Q(score__lte=6)),
        )
        .order_by()
    )
    scores = [
        value
        for row in counts
        if row["n"] >= PEER_MIN_ANSWERS
        and (value := nps_value(row["promoters"] or 0, row["detractors"] or 0, row["n"]))
        is not None
    ]
    if len(scores) < PEER_MIN_COMPANIES:
        return None
    lower, middle, upper = statistics.quantiles(scores, n=4, method="inclusive")
    return PeerBenchmark(
        companies=len(scores),
        lower_quartile=_rounded(lower),
        median=_rounded(middle),
        upper_quartile=_rounded(upper),
    )
