"""Median, min and max of repeated measurements, and ratios between medians."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """What the report shows for one figure: the median and the spread of its runs."""

    runs: int
    median: float
    minimum: float
    maximum: float


def summarize(samples: Sequence[float]) -> Summary:
    if not samples:
        raise ValueError("cannot summarize a figure with no measurements")
    values = [float(sample) for sample in samples]
    return Summary(
        runs=len(values), median=statistics.median(values), minimum=min(values), maximum=max(values)
    )


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, refusing a zero or negative denominator instead of dividing by it."""
    if denominator <= 0:
        raise ValueError(f"ratio against a non-positive baseline ({denominator})")
    return numerator / denominator


def overhead_percent(measured: float, baseline: float) -> float:
    """How much less ``measured`` achieves than ``baseline``, in percent of the baseline (throughput)."""
    return (1.0 - ratio(measured, baseline)) * 100.0
