"""The result model every part fills in and the report writer renders: figures, comparisons, targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from barestack_bench.stats import Summary, summarize


@dataclass
class Figure:
    """One measured quantity and its raw samples (one per run)."""

    key: str
    label: str
    unit: str
    samples: list[float]
    note: str = ""
    # Derived from a measured sample and scaled (e.g. the naive way at 400 modules from 30 measured).
    extrapolated: bool = False

    @property
    def summary(self) -> Summary:
        return summarize(self.samples)

    def to_json(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "median": summary.median,
            "min": summary.minimum,
            "max": summary.maximum,
            "runs": summary.runs,
            "samples": self.samples,
            "extrapolated": self.extrapolated,
            "note": self.note,
        }


@dataclass
class Comparison:
    """A ratio between two figures of the same run: ours against its baseline."""

    key: str
    label: str
    value: float
    unit: str
    ours: str
    baseline: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.baseline,
            "note": self.note,
        }


@dataclass
class Target:
    """A goal from the issue and whether this run reached it."""

    key: str
    label: str
    goal: str
    measured: str
    met: bool
    note: str = ""

    @classmethod
    def time_under(
        cls, key: str, label: str, seconds: float, goal_s: float, measured: str, goal_note: str = ""
    ) -> Target:
        """A "done in under ``goal_s`` seconds" goal: its text and its verdict from the same two numbers."""
        return cls(key, label, f"< {goal_s:g} s{goal_note}", measured, seconds < goal_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "goal": self.goal,
            "measured": self.measured,
            "met": self.met,
            "note": self.note,
        }


@dataclass
class PartResult:
    """Everything one part measured; parts only append to it."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def add(self, figure: Figure) -> Figure:
        if any(existing.key == figure.key for existing in self.figures):
            raise ValueError(f"part {self.name}: figure {figure.key} recorded twice")
        self.figures.append(figure)
        return figure

    def figure(self, key: str) -> Figure:
        for figure in self.figures:
            if figure.key == key:
                return figure
        raise KeyError(f"part {self.name} has no figure {key}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "duration_s": self.duration_s,
            "figures": [figure.to_json() for figure in self.figures],
            "comparisons": [comparison.to_json() for comparison in self.comparisons],
            "targets": [target.to_json() for target in self.targets],
            "notes": self.notes,
        }
