"""NPS arithmetic as pure functions over counts per score (design §4).

Everything starts from ``counts``: a sequence of eleven integers, the number of answers with
score 0, 1, …, 10. Rollups store exactly that, so every figure is derivable from them. Full
precision is kept; rounding is for display only. No answers gives ``None``, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

SCORES = range(11)
PROMOTER_SCORES = range(9, 11)
PASSIVE_SCORES = range(7, 9)
DETRACTOR_SCORES = range(7)


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
