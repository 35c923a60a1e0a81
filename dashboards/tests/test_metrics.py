"""NPS from counts per score (design §4), with the worked examples of the dashboards issue."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dashboards.metrics import (
    band_of,
    nps_compare,
    nps_interval,
    nps_report,
    nps_summary,
    sample_size_for_margin,
)


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


# --- Interval, band, comparison, sample size -------------------------------------------------


def test_interval_of_the_1000_answer_example_by_hand():
    # N′ = 1003, p′ = 700.75/1003, d′ = 100.75/1003, var = p′ + d′ − (p′ − d′)².
    p, d = 700.75 / 1003, 100.75 / 1003
    se = ((p + d - (p - d) ** 2) / 1003) ** 0.5
    interval = nps_interval(counts(700, 200, 100))
    assert interval is not None
    assert interval == {
        "low": pytest.approx(100 * (p - d - 1.959964 * se)),
        "high": pytest.approx(100 * (p - d + 1.959964 * se)),
    }
    assert interval["low"] == pytest.approx(55.7096, abs=1e-4)
    assert interval["high"] == pytest.approx(63.9315, abs=1e-4)


def test_all_promoters_is_100_with_a_real_interval():
    report = nps_report(counts(promoters=20))
    assert report["nps"] == 100
    interval = report["ci95"]
    assert interval is not None
    assert interval["high"] == 100  # clipped
    assert 50 < interval["low"] < 100  # not degenerate: 20 answers do not prove 100
    assert report["low_sample"] is True
    assert report["band"] == "world_class"


def test_all_detractors_clipped_at_minus_100():
    interval = nps_interval(counts(detractors=5))
    assert interval is not None
    assert interval["low"] == -100
    assert interval["high"] > -100


def test_no_answers_report_is_null_not_zero():
    report = nps_report([0] * 11)
    assert report["nps"] is None
    assert report["ci95"] is None
    assert report["band"] is None
    assert report["low_sample"] is True


@pytest.mark.parametrize(
    ("n", "low"), [(0, True), (1, True), (29, True), (30, False), (1000, False)]
)
def test_low_sample_below_30(n, low):
    assert nps_report(counts(promoters=n))["low_sample"] is low


@pytest.mark.parametrize(
    ("nps", "band"),
    [
        (-100, "needs_work"),
        (-0.1, "needs_work"),
        (0, "needs_work"),  # "> 0 good": zero itself is not yet good
        (0.1, "good"),
        (20, "good"),
        (20.5, "favourable"),
        (50, "favourable"),
        (51, "excellent"),
        (80, "excellent"),
        (80.01, "world_class"),
        (100, "world_class"),
        (None, None),
    ],
)
def test_bands(nps, band):
    assert band_of(nps) == band


def test_report_keeps_the_summary_contract():
    report: dict = dict(nps_report(counts(60, 25, 15)))
    summary: dict = dict(nps_summary(counts(60, 25, 15)))
    assert {k: report[k] for k in summary} == summary
    assert report["band"] == "favourable"
    assert report["low_sample"] is False


def test_comparison_by_hand():
    current, previous = counts(60, 25, 15), counts(50, 30, 20)
    result = nps_compare(current, previous)
    assert result is not None
    assert result["difference"] == pytest.approx(15.0)
    p1, d1 = 60.75 / 103, 15.75 / 103
    p2, d2 = 50.75 / 103, 20.75 / 103
    var1, var2 = p1 + d1 - (p1 - d1) ** 2, p2 + d2 - (p2 - d2) ** 2
    se = (var1 / 103 + var2 / 103) ** 0.5
    z = ((p1 - d1) - (p2 - d2)) / se
    assert result["z"] == pytest.approx(z)
    assert result["z"] == pytest.approx(1.3716, abs=1e-4)
    assert result["p_value"] == pytest.approx(0.1702, abs=1e-4)  # 2·(1 − Φ(1.3716))
    assert result["significant"] is False
    assert result["ci95"]["low"] < 0 < result["ci95"]["high"]


def test_comparison_significant_with_enough_answers():
    result = nps_compare(counts(600, 250, 150), counts(500, 300, 200))
    assert result is not None
    assert result["difference"] == pytest.approx(15.0)
    assert result["p_value"] < 0.001
    assert result["significant"] is True
    assert 0 < result["ci95"]["low"] < 15 < result["ci95"]["high"]


def test_comparison_with_an_empty_period_is_none():
    assert nps_compare(counts(5), [0] * 11) is None
    assert nps_compare([0] * 11, counts(5)) is None


@pytest.mark.parametrize(
    ("margin", "shares", "needed"),
    [
        (10, {}, 382),  # worst case: var = 1 → N′ = (195.9964/10)² = 384.15
        (5, {}, 1534),
        (10, {"promoters_share": 0.6, "detractors_share": 0.15}, 208),
    ],
)
def test_sample_size_for_margin(margin, shares, needed):
    assert sample_size_for_margin(margin, **shares) == needed


@pytest.mark.parametrize("margin", [0, -1, 201])
def test_sample_size_refuses_nonsense(margin):
    with pytest.raises(ValueError, match="margin"):
        sample_size_for_margin(margin)


@given(st.integers(min_value=1, max_value=200), st.floats(0, 1), st.floats(0, 1))
def test_sample_size_delivers_its_margin(margin, p, d):
    if p + d > 1:  # shares of one whole (1 − p, not d / (p + d): that may sum past 1.0)
        p = p / (p + d)
        d = 1 - p
    n = sample_size_for_margin(margin, promoters_share=p, detractors_share=d)
    var = p + d - (p - d) ** 2
    assert 100 * 1.959964 * (var / (n + 3)) ** 0.5 <= margin + 1e-9


@given(st.lists(st.integers(min_value=0, max_value=5_000), min_size=11, max_size=11))
@example(c=[0] * 10 + [1])  # one promoter: the adjusted interval alone stops at 98.5
@example(c=[1] + [0] * 10)  # one detractor
def test_interval_contains_the_estimate_and_stays_in_bounds(c):
    report = nps_report(c)
    interval = report["ci95"]
    if report["nps"] is None:
        assert interval is None
        return
    assert interval is not None
    assert -100 <= interval["low"] <= interval["high"] <= 100
    assert interval["low"] <= report["nps"] <= interval["high"]
    assert interval["low"] < interval["high"]  # never degenerate


@given(
    st.lists(st.integers(min_value=0, max_value=2_000), min_size=11, max_size=11),
    st.lists(st.integers(min_value=0, max_value=2_000), min_size=11, max_size=11),
)
def test_comparison_properties(a, b):
    forward, backward = nps_compare(a, b), nps_compare(b, a)
    if sum(a) == 0 or sum(b) == 0:
        assert forward is None
        return
    assert forward is not None
    assert backward is not None
    assert forward["difference"] == pytest.approx(-backward["difference"])
    assert forward["p_value"] == pytest.approx(backward["p_value"])
    assert 0 <= forward["p_value"] <= 1
    assert forward["significant"] == (forward["p_value"] < 0.05)
    assert -200 <= forward["ci95"]["low"] < forward["ci95"]["high"] <= 200
