"""Published NPS benchmarks (dashboards/data/benchmarks.csv, copied from the project's sources).

Each row keeps its source and year: comparisons show them, and a chart never mixes sources.
``INDUSTRY_OF_SEGMENT`` maps each published industry label onto the product's fixed industry
list (companies.models.Industry); ``ALL_INDUSTRIES`` marks cross-industry figures.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.utils.translation import pgettext_lazy

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
    # Travel, not hospitality: a café or a hotel is not compared with airlines.
    "Car rental": (Industry.TRAVEL,),
    "Airlines": (Industry.TRAVEL, Industry.TRANSPORT),
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


METRIC_LABELS = {
    "industry_avg_nps": pgettext_lazy("benchmark", "industry average"),
    "industry_nps": pgettext_lazy("benchmark", "industry NPS"),
    "avg_nps": pgettext_lazy("benchmark", "average"),
    "median_nps": pgettext_lazy("benchmark", "median"),
    "industry_nps_upper_bound": pgettext_lazy("benchmark", "top of the industry's range"),
    "industry_nps_lower_bound": pgettext_lazy("benchmark", "bottom of the industry's range"),
}

# The sources' names for industries and regions, in the reader's language.
LABELS = {
    "All industries": pgettext_lazy("benchmark", "All industries"),
    "All B2B": pgettext_lazy("benchmark", "All B2B companies"),
    "Grocery": pgettext_lazy("benchmark", "Grocery"),
    "Retail": pgettext_lazy("benchmark", "Retail"),
    "Auto dealers": pgettext_lazy("benchmark", "Auto dealers"),
    "Department & specialty stores": pgettext_lazy("benchmark", "Department & specialty stores"),
    "Ecommerce": pgettext_lazy("benchmark", "Ecommerce"),
    "Streaming media": pgettext_lazy("benchmark", "Streaming media"),
    "TV/internet service providers": pgettext_lazy("benchmark", "TV and internet providers"),
    "TV & internet service providers": pgettext_lazy("benchmark", "TV and internet providers"),
    "Telecommunications": pgettext_lazy("benchmark", "Telecommunications"),
    "Internet service providers": pgettext_lazy("benchmark", "Internet service providers"),
    "Cable & telecommunications": pgettext_lazy("benchmark", "Cable & telecommunications"),
    "Consumer payments": pgettext_lazy("benchmark", "Consumer payments"),
    "Brokerage & investments": pgettext_lazy("benchmark", "Brokerage & investments"),
    "Health insurance": pgettext_lazy("benchmark", "Health insurance"),
    "Insurance": pgettext_lazy("benchmark", "Insurance"),
    "Car rental": pgettext_lazy("benchmark", "Car rental"),
    "Airlines": pgettext_lazy("benchmark", "Airlines"),
    "Logistics & transportation": pgettext_lazy("benchmark", "Logistics & transportation"),
    "Retail; Transportation & logistics; Wholesale": pgettext_lazy(
        "benchmark", "Retail, transportation & logistics, wholesale"
    ),
    "Manufacturing": pgettext_lazy("benchmark", "Manufacturing"),
    "Software & SaaS": pgettext_lazy("benchmark", "Software & SaaS"),
    "B2B service providers": pgettext_lazy("benchmark", "B2B service providers"),
    "IT services (MSPs/VARs)": pgettext_lazy("benchmark", "IT services (MSPs, VARs)"),
    "HR services": pgettext_lazy("benchmark", "HR services"),
}
# A source is named as it names itself; only the words some rows add about it are translated.
SOURCES = {
    "Satmetrix (as reported in a Russian-language NPS article)": pgettext_lazy(
        "benchmark", "Satmetrix (as reported in a Russian-language NPS article)"
    ),
    "SurveyMonkey (help centre)": pgettext_lazy("benchmark", "SurveyMonkey (help centre)"),
}
REGIONS = {
    "US": pgettext_lazy("benchmark", "US"),
    "US+CA": pgettext_lazy("benchmark", "US and Canada"),
    "Global": pgettext_lazy("benchmark", "worldwide"),
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

    @property
    def label_display(self) -> str:
        return str(LABELS.get(self.label, self.label))

    @property
    def source_display(self) -> str:
        return str(SOURCES.get(self.source, self.source))

    @property
    def region_display(self) -> str:
        return str(REGIONS.get(self.region, self.region))

    @property
    def metric_label(self) -> str:
        """What the figure is, in the reader's words (``metric`` is the data file's code)."""
        return str(METRIC_LABELS.get(self.metric, self.metric))

    @property
    def year(self) -> str:
        """The year(s) of the data when the source gives them ("2022", "2020-21"), else ""."""
        return self.data_year if re.fullmatch(r"\d{4}(-\d{2,4})?", self.data_year) else ""


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
