"""NPS from counts per score (design §4), with the worked examples of the dashboards issue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.metrics import nps_summary


def counts(promoters: int = 0, passives: int = 0, detractors: int = 0) -> list[int]:
    c = [0] * 11
    c[10], c[7], c[0] = promoters, passives, detractors
    return c


def test_thousand_answers_700_promoters_100_detractors():
    summary = nps_summary(counts(promoters=700, passives=200, detractors=100))
    assert summary["response_count"] == 1000
    assert summary["nps"] == 60
    assert summary["promoters"] == {"count": 700, "percent": 70.0}
    assert summary["passives"] == {"count": 200, "percent": 20.0}
    assert summary["detractors"] == {"count": 100, "percent": 10.0}


def test_50_30_20_gives_30():
    assert nps_summary(counts(50, 30, 20))["nps"] == 30


def test_60_25_15_of_100_gives_45():
    summary = nps_summary(counts(60, 25, 15))
    assert summary["nps"] == 45
    assert summary["response_count"] == 100


def test_no_answers_is_none_not_zero():
    summary = nps_summary([0] * 11)
    assert summary["nps"] is None
    assert summary["response_count"] == 0
    assert summary["promoters"] == {"count": 0, "percent": None}


def test_categories_by_score_boundaries():
    c = [1] * 11  # one answer per score: 7 detractors (0–6), 2 passives, 2 promoters
    summary = nps_summary(c)
    assert summary["detractors"]["count"] == 7
    assert summary["passives"]["count"] == 2
    assert summary["promoters"]["count"] == 2
    assert summary["nps"] == pytest.approx(100 * (2 - 7) / 11)


def test_full_precision_kept():
    summary = nps_summary(counts(1, 1, 1))
    assert summary["nps"] == 0
    assert summary["promoters"]["percent"] == 100 / 3


@pytest.mark.parametrize("bad", [[0] * 10, [0] * 12, [-1] + [0] * 10])
def test_bad_counts_refused(bad):
    with pytest.raises(ValueError, match="counts per score"):
        nps_summary(bad)


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=11, max_size=11))
def test_properties(c):
    summary = nps_summary(c)
    n = sum(c)
    parts = (
        summary["promoters"]["count"]
        + summary["passives"]["count"]
        + summary["detractors"]["count"]
    )
    assert parts == n
    nps, p, d = summary["nps"], summary["promoters"]["percent"], summary["detractors"]["percent"]
    if n:
        assert nps is not None
        assert p is not None
        assert d is not None
        assert -100 <= nps <= 100
        assert nps == pytest.approx(p - d)
    else:
        assert nps is None
