"""Line charts as inline SVG, drawn on the server: no script, no chart library, nothing fetched.

One chart is a time axis (wall clock, UTC) and a value axis from 0, a polyline per series (broken
where a value is missing, a dot where a value stands alone) with a light area under it, and a
legend. The ``<svg>`` is an image with a ``<title>`` and a ``<desc>`` that says in words what it
shows (each series' latest and highest value), for screen readers and text browsers. Without any
value the chart says so instead of drawing an empty frame.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 26, 34  # room for the unit (above), values (left), times (below)
TIME_TICK_S = 600  # a time label every 10 minutes


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]  # (unix time, value or None for "no value then")
    color: str


def nice_step(largest: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) so that ``ticks`` steps cover ``largest``."""
    if largest <= 0:
        return 1.0
    raw = largest / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, value in sorted(points, key=lambda point: point[0]):
        if value is None or math.isnan(value):
            if current:
                segments.append(current)
            current = []
        else:
            current.append((t, value))
    if current:
        segments.append(current)
    return segments


def describe(series: Sequence[Series], unit: str) -> str:
    parts = []
    for one in series:
        values = [value for _, value in one.points if value is not None]
        if values:
            parts.append(
                f"{one.name}: latest {_number(values[-1])} {unit}, highest {_number(max(values))} {unit}"
            )
        else:
            parts.append(f"{one.name}: no value")
    return "; ".join(parts) + "."


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    start: float,
    end: float,
    unit: str,
    empty_message: str,
) -> Markup:
    """The chart of ``series`` between the times ``start`` and ``end``, values in ``unit``."""
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    values = [value for one in series for t, value in one.points if value is not None and start <= t <= end]
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{escape(title)}</title>',
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts.append(
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none"></rect>'
    )
    if not values:
        parts.append(f'<desc id="{desc_id}">{escape(empty_message)}</desc>')
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" '
            f'text-anchor="middle">{escape(empty_message)}</text>'
        )
        parts.append("</svg>")
        return Markup("".join(parts))

    parts.append(f'<desc id="{desc_id}">{escape(describe(series, unit))}</desc>')
    step = nice_step(max(values))
    top_value = step * max(1, math.ceil(max(values) / step))
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return round(LEFT + (t - start) / span * plot_w, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h - value / top_value * plot_h, 1)

    # Value axis: grid lines and labels at each step.
    parts.append('<g class="axis y">')
    tick = 0.0
    while tick <= top_value + step / 2:
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick)}" y2="{y(tick)}"></line>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4}" text-anchor="end">{escape(_number(tick))}</text>'
        )
        tick += step
    parts.append(f'<text class="unit" x="4" y="{TOP - 12}" text-anchor="start">{escape(unit)}</text>')
    parts.append("</g>")
    # Time axis: a label at every round 10 minutes (UTC).
    parts.append('<g class="axis x">')
    first = math.ceil(start / TIME_TICK_S) * TIME_TICK_S
    for t in range(int(first), int(end) + 1, TIME_TICK_S):
        parts.append(f'<line x1="{x(t)}" x2="{x(t)}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 5}"></line>')
        parts.append(f'<text x="{x(t)}" y="{HEIGHT - 12}" text-anchor="middle">{_clock(t)}</text>')
    parts.append(f'<text x="{LEFT + plot_w}" y="{HEIGHT - 1}" text-anchor="end">UTC</text>')
    parts.append("</g>")

    for index, one in enumerate(series):
        group = [f'<g class="series" data-series="{escape(one.name)}" style="color:{escape(one.color)}">']
        for segment in _segments([(t, v) for t, v in one.points if start <= t <= end]):
            coords = " ".join(f"{x(t)},{y(v)}" for t, v in segment)
            if len(segment) == 1:
                t, v = segment[0]
                group.append(f'<circle cx="{x(t)}" cy="{y(v)}" r="3" fill="currentColor"></circle>')
                continue
            base = y(0)
            area = f"{x(segment[0][0])},{base} {coords} {x(segment[-1][0])},{base}"
            if index == 0 or len(series) == 1:  # one shaded area keeps overlapping lines readable
                group.append(f'<polygon class="area" points="{area}" fill="currentColor"></polygon>')
            group.append(
                f'<polyline points="{coords}" fill="none" stroke="currentColor" stroke-width="2"></polyline>'
            )
        group.append("</g>")
        parts.extend(group)
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[Series]) -> Markup:
    items = "".join(
        f'<li><span class="swatch" style="background:{escape(one.color)}"></span>{escape(one.name)}</li>'
        for one in series
    )
    return Markup(f'<ul class="legend">{items}</ul>')
