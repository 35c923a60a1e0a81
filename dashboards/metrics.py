"""NPS arithmetic as pure functions over counts per score (design §4).

Everything starts from ``counts``: a sequence of eleven integers, the number of answers with
score 0, 1, …, 10. Rollups store exactly that, so every figure is derivable from them. Full
precision is kept; rounding is for display only. No answers gives ``None``, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

SCORES = range(11)
PROMOTER_SCORES = range(9, 11)
PASSIVE_SCORES = range(7, 9)
DETRACTOR_SCORES = range(7)

# z for a two-sided 95% interval, as design §4 writes it.
Z95 = 1.959964
LOW_SAMPLE_BELOW = 30
SIGNIFICANCE_LEVEL = 0.05


class CategoryFigure(TypedDict):
    count: int
    percent: float | None  # of N; None when N = 0


class NpsSummary(TypedDict):
    response_count: int
    nps: float | None
    promoters: CategoryFigure
    passives: CategoryFigure
    detractors: CategoryFigure


def _check(counts: Sequence[int]) -> None:
    if len(counts) != len(SCORES):
        raise ValueError(f"counts per score must have 11 entries (0..10), got {len(counts)}")
    if any(c < 0 for c in counts):
        raise ValueError("counts per score cannot be negative")


def _figure(count: int, n: int) -> CategoryFigure:
    return {"count": count, "percent": 100.0 * count / n if n else None}


def nps_value(promoters: int, detractors: int, n: int) -> float | None:
    """NPS = 100·(P − D)/N; ``None`` when there is no answer."""
    if n == 0:
        return None
    return 100.0 * (promoters - detractors) / n


def nps_summary(counts: Sequence[int]) -> NpsSummary:
    """N, counts and percentages per category, and the NPS, from the counts per score."""
    _check(counts)
    n = sum(counts)
    promoters = sum(counts[s] for s in PROMOTER_SCORES)
    passives = sum(counts[s] for s in PASSIVE_SCORES)
    detractors = sum(counts[s] for s in DETRACTOR_SCORES)
    return {
        "response_count": n,
        "nps": nps_value(promoters, detractors, n),
        "promoters": _figure(promoters, n),
        "passives": _figure(passives, n),
        "detractors": _figure(detractors, n),
    }


# --- Interval, bands, comparison (design §4) --------------------------------------------------


class Interval(TypedDict):
    low: float
    high: float


class NpsReport(NpsSummary):
    ci95: Interval | None  # None when N = 0
    low_sample: bool
    band: str | None  # one of BANDS; None when N = 0


class Comparison(TypedDict):
    difference: float  # raw NPS of the current period minus the previous one
    z: float
    p_value: float
    ci95: Interval  # of the difference, in NPS points, clipped to [-200, 200]
    significant: bool


def _categories(counts: Sequence[int]) -> tuple[int, int, int]:
    """(N, promoters, detractors)."""
    _check(counts)
    promoters = sum(counts[s] for s in PROMOTER_SCORES)
    detractors = sum(counts[s] for s in DETRACTOR_SCORES)
    return sum(counts), promoters, detractors


def _adjusted(promoters: int, detractors: int, n: int) -> tuple[float, float, int]:
    """Adjusted-Wald (Rocks 2016): (p′ − d′, var, N′) with N′ = N + 3, P + 0.75, D + 0.75."""
    n_adj = n + 3
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    return p - d, p + d - (p - d) ** 2, n_adj


def _clip(value: float, bound: float) -> float:
    return max(-bound, min(bound, value))


def nps_interval(counts: Sequence[int]) -> Interval | None:
    """The 95% adjusted-Wald interval of the NPS, clipped to [-100, 100]; None with no answer.

    The interval is centred on the adjusted NPS, not on the raw one shown as the headline, so
    with all answers promoters it is a real interval below 100 rather than [100, 100]. With a
    single answer the adjusted interval stops short of it (one promoter: up to 98.5, the raw
    NPS is 100); it is then widened to reach the raw figure, so the interval shown always
    contains the NPS shown (from two answers on the adjusted interval always does).
    """
    n, promoters, detractors = _categories(counts)
    if n == 0:
        return None
    centre, var, n_adj = _adjusted(promoters, detractors, n)
    half = Z95 * math.sqrt(var / n_adj)
    raw = 100.0 * (promoters - detractors) / n
    return {
        "low": min(_clip(100.0 * (centre - half), 100.0), raw),
        "high": max(_clip(100.0 * (centre + half), 100.0), raw),
    }


def low_sample(n: int) -> bool:
    """Fewer than 30 answers: the value is shown with a "low sample" mark."""
    return n < LOW_SAMPLE_BELOW


# Lower bounds (exclusive) of the interpretation bands, highest first. Anything not above 0,
# 0 itself included, "needs work".
BANDS: tuple[tuple[str, float], ...] = (
    ("world_class", 80.0),
    ("excellent", 50.0),
    ("favourable", 20.0),
    ("good", 0.0),
)
NEEDS_WORK = "needs_work"


def band_of(nps: float | None) -> str | None:
    """The interpretation band: > 80 world-class, > 50 excellent, > 20 favourable, > 0 good,
    otherwise needs work; None when there is no NPS."""
    if nps is None:
        return None
    for name, above in BANDS:
        if nps > above:
            return name
    return NEEDS_WORK


def nps_report(counts: Sequence[int]) -> NpsReport:
    """``nps_summary`` plus the 95% interval, the low-sample mark and the band."""
    summary = nps_summary(counts)
    return {
        **summary,
        "ci95": nps_interval(counts),
        "low_sample": low_sample(summary["response_count"]),
        "band": band_of(summary["nps"]),
    }


def nps_compare(current: Sequence[int], previous: Sequence[int]) -> Comparison | None:
    """Two-sample z-test on the adjusted counts (design §4); None if a period has no answer.

    ``difference`` is the change of the raw (headline) NPS; z, p and the interval of the
    difference come from the adjusted proportions. A change is ``significant`` when p < 0.05:
    only then may it be shown as up or down.
    """
    n1, p1, d1 = _categories(current)
    n2, p2, d2 = _categories(previous)
    nps1, nps2 = nps_value(p1, d1, n1), nps_value(p2, d2, n2)
    if nps1 is None or nps2 is None:
        return None
    centre1, var1, n1_adj = _adjusted(p1, d1, n1)
    centre2, var2, n2_adj = _adjusted(p2, d2, n2)
    delta = centre1 - centre2
    se = math.sqrt(var1 / n1_adj + var2 / n2_adj)  # > 0: each var is ≥ 0.75/N′ > 0
    z = delta / se
    p_value = math.erfc(abs(z) / math.sqrt(2.0))  # two-sided
    return {
        "difference": nps1 - nps2,
        "z": z,
        "p_value": p_value,
        "ci95": {
            "low": _clip(100.0 * (delta - Z95 * se), 200.0),
            "high": _clip(100.0 * (delta + Z95 * se), 200.0),
        },
        "significant": p_value < SIGNIFICANCE_LEVEL,
    }


def sample_size_for_margin(
    margin: float, *, promoters_share: float = 0.5, detractors_share: float = 0.5
) -> int:
    """Answers needed for a 95% interval of ± ``margin`` NPS points.

    Solves 100·z·√(var/N′) = margin for N = N′ − 3, with var = p + d − (p − d)² from the
    expected shares of promoters and detractors. The defaults (half and half) give the worst
    case, var = 1: ±10 points needs 382 answers, ±5 needs 1,534.
    """
    if not 0 < margin <= 200:
        raise ValueError("margin must be in (0, 200] NPS points")
    p, d = promoters_share, detractors_share
    if p < 0 or d < 0 or p + d > 1:
        raise ValueError("shares must be non-negative and sum to at most 1")
    var = p + d - (p - d) ** 2
    n_adj = var * (100.0 * Z95 / margin) ** 2
    return max(0, math.ceil(n_adj - 3 - 1e-9))
