"""Published NPS benchmarks (dashboards/data/benchmarks.csv, copied from the project's sources).

Each row keeps its source and year: comparisons show them, and a chart never mixes sources.
``INDUSTRY_OF_SEGMENT`` maps each published industry label onto the product's fixed industry
list (companies.models.Industry); ``ALL_INDUSTRIES`` marks cross-industry figures.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from companies.models import Industry

DATA_FILE = Path(__file__).resolve().parent / "data" / "benchmarks.csv"

ALL_INDUSTRIES: tuple[str, ...] = tuple(Industry.values)

INDUSTRY_OF_SEGMENT: dict[str, tuple[str, ...]] = {
    "Grocery": (Industry.RETAIL,),
    "Retail": (Industry.RETAIL,),
    "Auto dealers": (Industry.RETAIL,),
    "Department & specialty stores": (Industry.RETAIL,),
    "Ecommerce": (Industry.ECOMMERCE,),
    # No media industry in the product's list: streaming services sit with "other".
    "Streaming media": (Industry.OTHER,),
    "TV/internet service providers": (Industry.TELECOM,),
    "TV & internet service providers": (Industry.TELECOM,),
    "Telecommunications": (Industry.TELECOM,),
    "Internet service providers": (Industry.TELECOM,),
    "Cable & telecommunications": (Industry.TELECOM,),
    "Consumer payments": (Industry.BANKING,),
    "Brokerage & investments": (Industry.BANKING,),
    "Health insurance": (Industry.INSURANCE,),
    "Insurance": (Industry.INSURANCE,),
    "Car rental": (Industry.HOSPITALITY,),
    "Airlines": (Industry.HOSPITALITY, Industry.TRANSPORT),
    "Logistics & transportation": (Industry.TRANSPORT,),
    "Retail; Transportation & logistics; Wholesale": (Industry.RETAIL, Industry.TRANSPORT),
    "Manufacturing": (Industry.MANUFACTURING,),
    "Software & SaaS": (Industry.SOFTWARE,),
    "B2B service providers": (Industry.B2B_SERVICES,),
    "IT services (MSPs/VARs)": (Industry.B2B_SERVICES, Industry.SOFTWARE),
    "HR services": (Industry.B2B_SERVICES,),
    "All B2B": ALL_INDUSTRIES,
    "All industries": ALL_INDUSTRIES,
}


@dataclass(frozen=True)
class Benchmark:
    source: str
    published: str
    data_year: str
    region: str
    segment: str  # B2C, B2B or mixed
    label: str  # the industry as the source names it
    industries: tuple[str, ...]
    metric: str  # industry_avg_nps, avg_nps, median_nps, industry_nps_upper_bound, …
    value: float
    basis: str
    confidence: str  # primary or secondary
    reference: str

    @property
    def cross_industry(self) -> bool:
        return self.industries == ALL_INDUSTRIES


@cache
def benchmarks_all() -> tuple[Benchmark, ...]:
    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        return tuple(
            Benchmark(
                source=row["source"],
                published=row["published"],
                data_year=row["data_year"],
                region=row["region"],
                segment=row["segment"],
                label=row["industry"],
                industries=INDUSTRY_OF_SEGMENT[row["industry"]],
                metric=row["metric"],
                value=float(row["value"]),
                basis=row["basis"],
                confidence=row["conf"],
                reference=row["url_or_ref"],
            )
            for row in csv.DictReader(handle)
        )


def benchmarks_for_industry(*, industry: str) -> list[Benchmark]:
    """Benchmarks that speak of ``industry``: its own rows first, cross-industry ones after."""
    rows = [b for b in benchmarks_all() if industry in b.industries]
    return sorted(rows, key=lambda b: (b.cross_industry, b.source, b.data_year))
