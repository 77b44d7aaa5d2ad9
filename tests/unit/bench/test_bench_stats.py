"""Median/min/max and the ratios the report quotes."""

import pytest
from barestack_bench.stats import overhead_percent, ratio, summarize


def test_odd_and_even_runs() -> None:
    odd = summarize([3.0, 1.0, 2.0])
    assert (odd.runs, odd.median, odd.minimum, odd.maximum) == (3, 2.0, 1.0, 3.0)
    assert summarize([4.0, 1.0, 2.0, 3.0]).median == 2.5


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no measurements"):
        summarize([])


def test_ratio_refuses_a_zero_baseline() -> None:
    assert ratio(30.0, 2.0) == 15.0
    with pytest.raises(ValueError, match="non-positive"):
        ratio(1.0, 0.0)


def test_overhead_is_throughput_lost_in_percent() -> None:
    assert overhead_percent(85.0, 100.0) == pytest.approx(15.0)
    assert overhead_percent(110.0, 100.0) == pytest.approx(-10.0)
