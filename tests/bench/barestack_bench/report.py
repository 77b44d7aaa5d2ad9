"""Write a run's results as JSON and as Markdown tables (the Markdown is also printed)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barestack_bench.results import Comparison, Figure, PartResult, Target

# The numbering, so the report reads in the same order as the spec.
PART_NUMBERS = {"converge": 1, "nochange": 2, "venvs": 3, "requests": 4, "deploy": 5, "wheelhouse": 6}


@dataclass
class RunReport:
    command: str
    started: str
    finished: str
    duration_s: float
    settings: dict[str, Any]
    controller: dict[str, Any]
    parts: list[PartResult]
    errors: list[dict[str, str]] = field(default_factory=list)

    def ordered_parts(self) -> list[PartResult]:
        return sorted(self.parts, key=lambda part: PART_NUMBERS.get(part.name, 99))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "duration_s": round(self.duration_s, 1),
            "settings": self.settings,
            "controller": self.controller,
            "targets": [
                {"part": part.name, **target.to_json()}
                for part in self.ordered_parts()
                for target in part.targets
            ],
            "parts": [part.to_json() for part in self.ordered_parts()],
            "errors": self.errors,
        }


def format_number(value: float) -> str:
    """Three significant digits or so, without scientific notation."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3f}"


# Units of things that are counted: whole numbers print without decimals.
COUNT_UNITS = ("tasks", "requests")


def format_value(value: float, unit: str) -> str:
    if unit in COUNT_UNITS and float(value).is_integer():
        return f"{value:,.0f}"
    return format_number(value)


def with_unit(value: float, unit: str) -> str:
    if unit in ("x", "%"):
        return f"{format_value(value, unit)}{unit}"
    return f"{format_value(value, unit)} {unit}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(row) for row in rows)]


def render_part(part: PartResult) -> list[str]:
    number = PART_NUMBERS.get(part.name)
    heading = f"## {number}. {part.title}" if number else f"## {part.title}"
    lines = [heading, "", f"Part `{part.name}`, {part.duration_s / 60:.1f} min.", ""]
    rows = []
    for figure in part.figures:
        summary = figure.summary
        label = figure.label + (f" ({figure.note})" if figure.note else "")
        rows.append(
            [
                label,
                with_unit(summary.median, figure.unit),
                format_value(summary.minimum, figure.unit),
                format_value(summary.maximum, figure.unit),
                str(summary.runs),
            ]
        )
    lines += _table(["figure", "median", "min", "max", "runs"], rows)
    if part.comparisons:
        lines += [
            "",
            *_table(
                ["comparison (same run)", "value", "ours", "baseline", "how"],
                [[c.label, with_unit(c.value, c.unit), c.ours, c.baseline, c.note] for c in part.comparisons],
            ),
        ]
    if part.notes:
        lines += ["", *(f"- {note}" for note in part.notes)]
    return [*lines, ""]


def process_manager(report: RunReport) -> str:
    """What ran the services: the run's setting; systemd for runs from before the setting existed
    (the role's default, which they all used)."""
    return str(report.settings.get("process_manager", "systemd"))


def render_markdown(report: RunReport) -> str:
    controller = report.controller
    lines = [
        "# barestack benchmarks",
        "",
        f"`{report.command}` on {report.started} ({report.duration_s / 60:.1f} min). Controller: "
        f"{controller.get('cpus')} CPUs shared with the test machines (systemd-nspawn), load average "
        f"{controller.get('load_average_start')} at start, {controller.get('load_average_end')} at the end; "
        f"commit {controller.get('commit')}, with playbooks/roles and services/ as copied at the start "
        f"(content hashes {controller.get('project_snapshot')}, {controller.get('services_snapshot')}); "
        f"{controller.get('ansible')}; {controller.get('wrk')}.",
        "",
        f"Process manager: **{process_manager(report)}** (`app_process_manager` on the bench's machines).",
        "",
        "Each figure: median of its runs, with min and max. Comparisons are between figures of this run.",
        "",
    ]
    targets = [(part, target) for part in report.ordered_parts() for target in part.targets]
    if targets:
        lines += [
            "## Targets",
            "",
            *_table(
                ["target", "goal", "measured", "met"],
                [[t.label, t.goal, t.measured, "yes" if t.met else "**no**"] for _, t in targets],
            ),
            "",
        ]
    if report.errors:
        lines += ["## Parts that failed", "", *(f"- `{e['part']}`: {e['error']}" for e in report.errors), ""]
    for part in report.ordered_parts():
        lines += render_part(part)
    return "\n".join(lines).rstrip() + "\n"


def write_text_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_report(report: RunReport, directory: Path, name: str) -> tuple[Path, Path, str]:
    """Write <name>.json and <name>.md into ``directory``; returns both paths and the Markdown."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    json_path = directory / f"{name}.json"
    markdown_path = directory / f"{name}.md"
    write_text_atomically(json_path, json.dumps(report.to_json(), indent=2) + "\n")
    write_text_atomically(markdown_path, markdown)
    return json_path, markdown_path, markdown


def load_report(path: Path) -> RunReport:
    """A report back from its JSON (to render it again, e.g. after the Markdown layout changed)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != 1:
        raise ValueError(f"{path}: not a barestack bench report (format {data.get('format')!r})")
    parts = []
    for part in data["parts"]:
        result = PartResult(name=part["name"], title=part["title"], duration_s=part["duration_s"])
        for figure in part["figures"]:
            result.add(
                Figure(
                    key=figure["key"],
                    label=figure["label"],
                    unit=figure["unit"],
                    samples=figure["samples"],
                    note=figure["note"],
                    extrapolated=figure["extrapolated"],
                )
            )
        result.comparisons = [Comparison(**comparison) for comparison in part["comparisons"]]
        result.targets = [Target(**target) for target in part["targets"]]
        result.notes = list(part["notes"])
        parts.append(result)
    return RunReport(
        command=data["command"],
        started=data["started"],
        finished=data["finished"],
        duration_s=data["duration_s"],
        settings=data["settings"],
        controller=data["controller"],
        parts=parts,
        errors=data.get("errors", []),
    )
