"""The report writer: JSON and Markdown from a part's results, written atomically."""

import json
from pathlib import Path

import pytest
from barestack_bench.cli import main
from barestack_bench.report import RunReport, format_number, load_report, render_markdown, write_report
from barestack_bench.results import Comparison, Figure, PartResult, Target


def sample_report() -> RunReport:
    part = PartResult(name="venvs", title="Venvs at scale", duration_s=90.0)
    part.add(Figure("ours_400_first_build", "ours, 400 modules: first build", "s", [30.0, 20.0, 25.0]))
    part.add(
        Figure(
            "naive_400_first_build",
            "naive, 400 modules",
            "s",
            [1400.0, 1200.0],
            extrapolated=True,
            note="measured on 30 modules",
        )
    )
    part.comparisons.append(Comparison("speedup", "400 modules: naive / ours", 52.0, "x", "ours", "naive"))
    part.targets.append(Target("venv_speedup", "at least 15x faster", ">= 15x", "52.0x", True))
    part.targets.append(Target("venv_first_build", "under 90 s", "< 90 s", "95.0 s", False))
    part.notes.append("a note | with a pipe")
    return RunReport(
        command="make bench PART=venvs",
        started="2026-11-26T03:00:00Z",
        finished="2026-11-26T03:01:30Z",
        duration_s=90.0,
        settings={"iterations": 3},
        controller={"cpus": 2, "load_average_start": [1.0, 1.0, 1.0], "load_average_end": [2.0, 1.5, 1.0]},
        parts=[part],
    )


def test_markdown_has_targets_figures_and_comparisons() -> None:
    markdown = render_markdown(sample_report())
    assert "| at least 15x faster | >= 15x | 52.0x | yes |" in markdown
    assert "| under 90 s | < 90 s | 95.0 s | **no** |" in markdown
    assert "## 3. Venvs at scale" in markdown
    assert "| ours, 400 modules: first build | 25.0 s | 20.0 | 30.0 | 3 |" in markdown
    assert "| naive, 400 modules (measured on 30 modules) | 1,300 s | 1,200 | 1,400 | 2 |" in markdown
    assert "| 400 modules: naive / ours | 52.0x | ours | naive |  |" in markdown
    assert "- a note | with a pipe" in markdown


def test_json_and_markdown_are_written_without_leftovers(tmp_path: Path) -> None:
    json_path, markdown_path, markdown = write_report(sample_report(), tmp_path, "bench-venvs")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["parts"][0]["figures"][0]["median"] == 25.0
    assert data["parts"][0]["figures"][1]["extrapolated"] is True
    assert [target["met"] for target in data["targets"]] == [True, False]
    assert markdown_path.read_text(encoding="utf-8") == markdown
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bench-venvs.json", "bench-venvs.md"]


def test_a_figure_is_recorded_once() -> None:
    part = PartResult(name="x", title="x")
    part.add(Figure("a", "a", "s", [1.0]))
    with pytest.raises(ValueError, match="twice"):
        part.add(Figure("a", "a again", "s", [2.0]))


def test_counted_units_print_whole_numbers() -> None:
    report = sample_report()
    report.parts[0].add(Figure("changed", "tasks reporting changed", "tasks", [0.0, 0.0, 2.0]))
    assert "| tasks reporting changed | 0 tasks | 0 | 2 | 3 |" in render_markdown(report)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1234.5, "1,234"), (42.25, "42.2"), (3.14159, "3.14"), (0.0764, "0.076"), (0.0, "0.00")],
)
def test_number_format(value: float, text: str) -> None:
    assert format_number(value) == text


def test_a_written_report_reads_back_to_the_same_markdown(tmp_path: Path) -> None:
    json_path, _, markdown = write_report(sample_report(), tmp_path, "bench-venvs")
    assert render_markdown(load_report(json_path)) == markdown


def test_reading_something_else_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"format": 7}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a barestack bench report"):
        load_report(other)


def test_the_cli_renders_an_earlier_run_again(tmp_path: Path) -> None:
    json_path, markdown_path, markdown = write_report(sample_report(), tmp_path, "bench-venvs")
    markdown_path.write_text("stale", encoding="utf-8")
    assert main(["--render", str(json_path)]) == 0
    assert markdown_path.read_text(encoding="utf-8") == markdown
    assert main(["--render", str(tmp_path / "missing.json")]) == 2
