import csv
import re
from pathlib import Path

import pytest

from companies.models import Industry
from dashboards.benchmarks import (
    DATA_FILE,
    INDUSTRY_OF_SEGMENT,
    benchmarks_all,
    benchmarks_for_industry,
)

SHARED_COPY = Path(__file__).resolve().parents[3] / "shared" / "data" / "benchmarks.csv"


def test_every_published_row_maps_onto_the_product_industries():
    with DATA_FILE.open(newline="", encoding="utf-8") as handle:
        labels = {row["industry"] for row in csv.DictReader(handle)}
    unmapped = labels - INDUSTRY_OF_SEGMENT.keys()
    assert not unmapped, f"benchmark industries without a mapping: {unmapped}"
    for industries in INDUSTRY_OF_SEGMENT.values():
        assert industries
        assert set(industries) <= set(Industry.values)


def test_rows_keep_source_and_year():
    rows = benchmarks_all()
    assert len(rows) >= 30
    assert all(b.source and b.data_year for b in rows)
    retail = benchmarks_for_industry(industry=Industry.RETAIL)
    assert any(b.source == "Qualtrics XM Institute" and b.value == 29 for b in retail)
    # Industry-specific rows come before cross-industry averages.
    flags = [b.cross_industry for b in retail]
    assert flags == sorted(flags)
    assert any(flags)


def test_industry_without_specific_rows_still_gets_cross_industry_figures():
    rows = benchmarks_for_industry(industry=Industry.EDUCATION)
    assert rows
    assert all(b.cross_industry for b in rows)


@pytest.mark.skipif(not SHARED_COPY.exists(), reason="shared/ is not beside this checkout")
def test_shipped_copy_matches_the_sourced_data():
    assert DATA_FILE.read_bytes() == SHARED_COPY.read_bytes()


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_every_label_of_the_benchmark_card_is_in_the_readers_language(language: str) -> None:
    # The industry rows kept the source's English name ("Retail") on a Russian page.
    from django.utils import translation

    with translation.override(language):
        for b in benchmarks_all():
            # Sources keep their own names; words about them are translated.
            assert not re.search(r"\b[a-z]{3,} [a-z]{3,}\b", b.source_display), b.source_display
            for english, shown in (
                (b.label, b.label_display),
                (b.region, b.region_display),
                (b.metric, b.metric_label),
            ):
                assert shown != english, (language, english)
                assert not re.search(r"[A-Za-z]{4,}", shown.replace("SaaS", "")), shown
