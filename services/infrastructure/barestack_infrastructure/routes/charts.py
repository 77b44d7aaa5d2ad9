"""``/charts``: the last hour as pictures (request rate and p95 per service, module runs), for operators.

The page is drawn from the sampler's copy of the hour in memory (``sampler.Sampler.current``):
a page view reads no store, calls no service and forks nothing.
"""

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template
from markupsafe import Markup

from barestack_infrastructure.access import operator_required
from barestack_infrastructure.charts import Series, legend, line_chart
from barestack_infrastructure.sampler import HISTORY_S, OUTCOMES, SERVICES, Sampler

blueprint = Blueprint("charts", __name__)
EXTENSION_KEY = "barestack_infrastructure.sampler"
PAGE_REFRESH_SECONDS = 30
SERVICE_COLORS = {"backend": "#1f5fbf", "frontend": "#c05a00", "infrastructure": "#2e7d32"}
OUTCOME_COLORS = {"succeeded": "#2e7d32", "failed": "#b42318", "timeout": "#8a5a00"}


def _service_series(points: Sequence[dict[str, Any]], field: str) -> list[Series]:
    series = []
    for name in SERVICES:
        values: list[tuple[float, float | None]] = []
        for point in points:
            measured = (point.get("services") or {}).get(name)
            value = measured.get(field) if isinstance(measured, dict) else None
            values.append((point["t"], float(value) if isinstance(value, int | float) else None))
        series.append(Series(name, values, SERVICE_COLORS[name]))
    return series


def _runs_per_minute(points: Sequence[dict[str, Any]]) -> list[Series]:
    minutes: dict[float, dict[str, int]] = {}
    for point in points:
        runs = point.get("runs")
        if not isinstance(runs, dict):
            continue  # PostgreSQL did not answer: a gap, not a zero
        minute = minutes.setdefault(point["t"] // 60 * 60, dict.fromkeys(OUTCOMES, 0))
        for outcome in OUTCOMES:
            minute[outcome] += int(runs.get("outcomes", {}).get(outcome, 0))
    return [
        Series(
            outcome, [(t, counts[outcome]) for t, counts in sorted(minutes.items())], OUTCOME_COLORS[outcome]
        )
        for outcome in OUTCOMES
    ]


def _run_durations(points: Sequence[dict[str, Any]]) -> list[Series]:
    result = []
    for label, key, color in (("p95", "p95", "#6a3d9a"), ("longest", "max", "#b42318")):
        values: list[tuple[float, float | None]] = []
        for point in points:
            durations = (point.get("runs") or {}).get("duration_ms")
            values.append((point["t"], durations[key] / 1000 if isinstance(durations, dict) else None))
        result.append(Series(label, values, color))
    return result


def build_charts(
    points: Sequence[dict[str, Any]], now: float, interval_s: float
) -> list[dict[str, Markup | str]]:
    start = now - HISTORY_S
    waiting = f"No samples yet: the first appear within {interval_s * 2:.0f} s of the dashboard starting."
    specs = [
        (
            "chart-request-rate",
            "Requests per second, per service",
            _service_series(points, "rate"),
            "req/s",
            waiting,
        ),
        ("chart-latency-p95", "p95 latency per service", _service_series(points, "p95_ms"), "ms", waiting),
        (
            "chart-runs",
            "Module runs finished per minute, by outcome",
            _runs_per_minute(points),
            "runs",
            waiting,
        ),
        (
            "chart-run-durations",
            "Module run durations (per sample: p95 and longest)",
            _run_durations(points),
            "s",
            "No module run finished in the last hour." if points else waiting,
        ),
    ]
    return [
        {
            "id": chart_id,
            "title": title,
            "svg": line_chart(chart_id, title, series, start, now, unit, empty),
            "legend": legend(series),
        }
        for chart_id, title, series, unit, empty in specs
    ]


@blueprint.get("/charts")
@operator_required("html")
def charts() -> tuple[str, int]:
    sampler: Sampler = current_app.extensions[EXTENSION_KEY]
    points, read_at = sampler.current()
    now = time.time()
    last = points[-1]["t"] if points else None
    page = render_template(
        "charts.html",
        charts=build_charts(points, now, sampler.interval_s),
        interval_s=sampler.interval_s,
        samples=len(points),
        last_sample_age_s=None if last is None else max(0.0, now - last),
        last_sample_iso=None
        if last is None
        else datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds"),
        read_age_s=None if read_at is None else max(0.0, now - read_at),
        problem=sampler.problem,
        refresh_seconds=PAGE_REFRESH_SECONDS,
    )
    return page, 200
