"""Server-side SVG charts: bar charts (grouped) and line charts, no JavaScript, no CDN.

A chart is a `Chart` (x labels and one or more named series of numbers) rendered to
an inline ``<svg>``. Every data point is an element with class ``point`` and a
``data-value``, and carries a ``<title>`` the browser shows as a tooltip. All text is
escaped; the SVG scales to its container's width (viewBox). A value of None is a gap
(no data that day), drawn as nothing rather than as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 48
PAD_RIGHT = 12
PAD_TOP = 14
PAD_BOTTOM = 42
GRID_LINES = 4
MAX_BAR_W = 44.0


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: list[float | None]
    css: str = "s0"


@dataclass(slots=True)
class Chart:
    title: str
    labels: list[str]
    series: list[Series] = field(default_factory=list)
    unit: str = ""
    kind: str = "bar"  # "bar" or "line"
    y_max: float | None = None  # fixed scale (e.g. 100 for percentages)
    whole: bool = False  # counts: no fractional grid lines

    @property
    def empty(self) -> bool:
        """Nothing to draw: no value at all, or (bars) only zeros."""
        values = [v for s in self.series for v in s.values if v is not None]
        return not self.labels or not (values if self.kind == "line" else any(values))

    def svg(self) -> Markup:
        return render(self)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def format_number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render(chart: Chart) -> Markup:
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    top = chart.y_max or nice_max(
        max((v for s in chart.series for v in s.values if v is not None), default=0)
    )
    if chart.whole and not chart.y_max:
        top = max(top, float(GRID_LINES))
    n = max(1, len(chart.labels))
    slot = plot_w / n
    parts = [
        (
            f'<svg class="chart chart-{escape(chart.kind)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-label="{escape(chart.title)}" preserveAspectRatio="xMidYMid meet">'
        ),
        f"<title>{escape(chart.title)}</title>",
    ]

    def y_of(value: float) -> float:
        return PAD_TOP + plot_h - (min(value, top) / top) * plot_h

    for i in range(GRID_LINES + 1):
        value = top * i / GRID_LINES
        y = y_of(value)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_number(value))}</text>"
        )
    every = max(1, math.ceil(n / 10))  # at most ~10 x labels
    for i, label in enumerate(chart.labels):
        if i % every == 0:
            x = PAD_LEFT + slot * (i + 0.5)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label[:12])}</text>'
            )
    if chart.kind == "line":
        parts += _lines(chart, slot, y_of)
    else:
        parts += _bars(chart, slot, y_of, plot_h)
    parts += _legend(chart)
    parts.append("</svg>")
    return Markup("".join(parts))


def _tip(chart: Chart, series: Series, label: str, value: float) -> str:
    name = f"{series.name}, " if len(chart.series) > 1 else ""
    return f"{label}: {name}{format_number(value)}{chart.unit}"


def _bars(chart: Chart, slot: float, y_of, plot_h: float) -> list[str]:
    parts = []
    groups = max(1, len(chart.series))
    bar_w = max(1.0, min(slot * 0.8 / groups, MAX_BAR_W))
    inset = (slot - bar_w * groups) / 2  # the group sits in the middle of its slot
    base = PAD_TOP + plot_h
    for g, series in enumerate(chart.series):
        for i, value in enumerate(series.values):
            if value is None:
                continue
            x = PAD_LEFT + slot * i + inset + g * bar_w
            y = y_of(value)
            tip = escape(_tip(chart, series, chart.labels[i], value))
            parts.append(
                f'<rect class="point bar {escape(series.css)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar_w:.1f}" height="{max(0.0, base - y):.1f}" data-value="{value:g}">'
                f"<title>{tip}</title></rect>"
            )
    return parts


def _lines(chart: Chart, slot: float, y_of) -> list[str]:
    parts = []
    for series in chart.series:
        points = [
            (PAD_LEFT + slot * (i + 0.5), y_of(v), v, chart.labels[i])
            for i, v in enumerate(series.values)
            if v is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        parts.append(f'<polyline class="line {escape(series.css)}" points="{path}"/>')
        for x, y, value, label in points:
            tip = escape(_tip(chart, series, label, value))
            parts.append(
                f'<circle class="point dot {escape(series.css)}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                f'data-value="{value:g}"><title>{tip}</title></circle>'
            )
    return parts


def _legend(chart: Chart) -> list[str]:
    if len(chart.series) < 2:
        return []
    parts = []
    x = PAD_LEFT
    for series in chart.series:
        parts.append(
            f'<rect class="legend {escape(series.css)}" x="{x}" y="{HEIGHT - 14}" width="10" height="10"/>'
            f'<text class="axis" x="{x + 14}" y="{HEIGHT - 5}">{escape(series.name)}</text>'
        )
        x += 24 + 8 * len(series.name)
    return parts
