"""Line charts as numbers for an inline SVG (the template draws them; no script, no library).

Everything here is a number or a fixed colour, so a chart carries no user text into the markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 10, 22
COLOURS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700")


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # "x,y x,y …" for <polyline>
    dots: list[tuple[float, float]]
    colour: str
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    title: str
    lines: list[Line]
    y_ticks: list[tuple[float, str]]  # (y pixel, label)
    x_ticks: list[tuple[float, str]]
    threshold: tuple[float, str] | None = None  # (y pixel, label)
    marks: list[tuple[float, float]] = field(default_factory=list)  # shaded x spans (drifted windows)
    empty: bool = False
    width: int = WIDTH
    height: int = HEIGHT


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or abs(v) < 0.01:
        return f"{v:.0e}" if abs(v) < 0.01 else f"{v:.0f}"
    return f"{v:.2f}"


def line_chart(
    title: str,
    x: Sequence[int],
    series: Sequence[tuple[str, Sequence[float | None], bool]],
    *,
    threshold: float | None = None,
    log: bool = False,
    marks: Sequence[int] = (),
) -> Chart:
    """A chart of ``series`` (label, values, dashed) over ``x`` (window ids); None values are gaps.

    ``log``: a log10 y axis (p-values); ``marks``: x values to shade (drifted windows)."""
    values = [v for _, ys, _ in series for v in ys if v is not None and (not log or v > 0)]
    if threshold is not None and (not log or threshold > 0):
        values.append(threshold)
    if not x or not values:
        return Chart(title, [], [], [], empty=True)

    def t(v: float) -> float:
        return math.log10(v) if log else v

    lo, hi = min(t(v) for v in values), max(t(v) for v in values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    x0, x1 = min(x), max(x)
    span = max(x1 - x0, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(xv: float) -> float:
        return round(LEFT + (xv - x0) / span * plot_w, 1)

    def py(v: float) -> float:
        return round(TOP + (hi - t(v)) / (hi - lo) * plot_h, 1)

    lines = []
    for i, (label, ys, dashed) in enumerate(series):
        pts = [(px(xv), py(v)) for xv, v in zip(x, ys, strict=True) if v is not None and (not log or v > 0)]
        lines.append(
            Line(label, " ".join(f"{a},{b}" for a, b in pts), pts, COLOURS[i % len(COLOURS)], dashed)
        )
    ticks = []
    for k in range(5):
        tv = lo + (hi - lo) * k / 4
        ticks.append((round(TOP + (hi - tv) / (hi - lo) * plot_h, 1), _fmt(10**tv if log else tv)))
    step = max(1, len(x) // 8)
    xt = [(px(xv), str(xv)) for xv in list(x)[::step]]
    half = plot_w / span / 2 if span else 4
    shaded = [(round(px(m) - half, 1), round(2 * half, 1)) for m in marks]
    thr = (py(threshold), _fmt(threshold)) if threshold is not None and (not log or threshold > 0) else None
    return Chart(title, lines, ticks, xt, thr, shaded)
