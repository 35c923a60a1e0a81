"""Chart geometry for the dashboard: pure functions from figures to SVG coordinates.

The page draws its charts as inline SVG from these numbers (no chart library, nothing to
download, nothing that needs JavaScript), each chart next to a table with the same figures
for screen readers and for copying.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.dateformat import format as date_format
from django.utils.formats import get_format, number_format

from dashboards.selectors import TrendPoint

WIDTH = 720
PLOT_TOP = 12
PLOT_HEIGHT = 180  # the NPS panel: -100 at the bottom, +100 at the top
BARS_TOP = 212
BARS_HEIGHT = 48  # the response volume under it
HEIGHT = BARS_TOP + BARS_HEIGHT + 22  # room for the x labels
LEFT = 40
RIGHT = 8
MAX_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True)
class GridLine:
    y: float
    value: int


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    left: int
    right: int
    grid: list[GridLine]
    lines: list[str]  # SVG path data of the NPS line, one per unbroken run of points
    dots: list[tuple[float, float, str]]  # (x, y, title) for each point with a value
    band: list[str]  # SVG path data of the 95% interval, one per unbroken run
    bars: list[Bar]
    labels: list[Label]
    bars_top: int
    bars_bottom: int


@dataclass(frozen=True)
class Scale:
    """The NPS range the upper panel shows: multiples of 25 around the data (at least 50
    points tall, never beyond −100 … 100), so a movement of a few points stays visible."""

    low: int = -100
    high: int = 100

    @classmethod
    def around(cls, values: Sequence[float]) -> Scale:
        if not values:
            return cls()
        low = max(-100, math.floor((min(values) - 5) / 25) * 25)
        high = min(100, math.ceil((max(values) + 5) / 25) * 25)
        while high - low < 50:
            if high < 100:
                high += 25
            if high - low < 50 and low > -100:
                low -= 25
        return cls(low, high)

    def y(self, value: float) -> float:
        clipped = max(float(self.low), min(float(self.high), value))
        return round(PLOT_TOP + (self.high - clipped) / (self.high - self.low) * PLOT_HEIGHT, 2)

    def grid(self) -> list[int]:
        return list(range(self.low, self.high + 1, 25))


def nps_y(value: float) -> float:
    """The y of an NPS value on the full −100 … 100 scale."""
    return Scale().y(value)


def _runs(points: Sequence[TrendPoint]) -> list[list[int]]:
    """Indexes of the points with a value, split where a bucket has no answer."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, point in enumerate(points):
        if point["nps"] is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    return runs


def trend_chart(points: Sequence[TrendPoint], *, label_format: str = "j M") -> TrendChart:
    """NPS line with its interval band above, response volume bars below.

    ``label_format``: a Django date format; month names in the active language.
    """
    scale = Scale.around(
        [p["ci95"][bound] for p in points if p["ci95"] for bound in ("low", "high")]  # type: ignore[literal-required]
        + [p["nps"] for p in points if p["nps"] is not None]
    )
    nps_y = scale.y
    count = max(len(points), 1)
    step = (WIDTH - LEFT - RIGHT) / count
    xs = [round(LEFT + step * (i + 0.5), 2) for i in range(len(points))]
    lines, band, dots = [], [], []
    for run in _runs(points):
        lines.append(
            " ".join(
                f"{'M' if n == 0 else 'L'}{xs[i]},{nps_y(points[i]['nps'] or 0.0)}"
                for n, i in enumerate(run)
            )
        )
        highs = []
        lows = []
        for i in run:
            interval = points[i]["ci95"]
            if interval is not None:
                highs.append(f"{xs[i]},{nps_y(interval['high'])}")
                lows.append(f"{xs[i]},{nps_y(interval['low'])}")
        if len(highs) > 1:
            band.append("M" + " L".join(highs + lows[::-1]) + " Z")
        for i in run:
            point = points[i]
            value = point["nps"]
            assert value is not None
            day = date_format(point["start"], get_format("DATE_FORMAT"))
            title = f"{day}: NPS {number_format(value, 1)}, N = {point['response_count']}"
            dots.append((xs[i], nps_y(value), title))
    most = max((p["response_count"] for p in points), default=0) or 1
    bar_width = max(1.0, round(step * 0.7, 2))
    bars = []
    for x, point in zip(xs, points, strict=True):
        height = round(BARS_HEIGHT * point["response_count"] / most, 2)
        bars.append(
            Bar(
                x=round(x - bar_width / 2, 2),
                y=round(BARS_TOP + BARS_HEIGHT - height, 2),
                width=bar_width,
                height=height,
                count=point["response_count"],
                label=date_format(point["start"], get_format("DATE_FORMAT")),
            )
        )
    every = max(1, -(-len(points) // MAX_LABELS))
    labels = [
        Label(x=x, text=date_format(point["start"], label_format))
        for index, (x, point) in enumerate(zip(xs, points, strict=True))
        if index % every == 0
    ]
    return TrendChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        grid=[GridLine(y=nps_y(value), value=value) for value in scale.grid()],
        lines=lines,
        dots=dots,
        band=band,
        bars=bars,
        labels=labels,
        bars_top=BARS_TOP,
        bars_bottom=BARS_TOP + BARS_HEIGHT,
    )
