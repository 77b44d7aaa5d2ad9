"""Smoke run of the bench's wheelhouse part (controller only): a small realistic tree, one iteration.

Real uv, real PyPI (like the venv tests' wheelhouse), a new empty uv cache and wheelhouse per run.
No figure here is a benchmark result.
"""

import json
from pathlib import Path

from barestack_bench.parts.wheelhouse import TITLE, change_one_pin, run
from barestack_bench.report import RunReport, write_report
from barestack_bench.session import Session
from barestack_bench.settings import BenchSettings
from barestack_bench.sources import generated_tree


def test_wheelhouse_part_measures_cold_warm_and_one_changed_set(tmp_path: Path) -> None:
    session = Session(BenchSettings(iterations=1, wheelhouse_scales=((12, 6),)), tmp_path / "work")
    result = run(session)
    assert result.title == TITLE
    cold = result.figure("wheelhouse_12_cold")
    # 6 generated sets plus the services' own; every wheel came from PyPI into an empty folder.
    assert cold.samples[0] > 0 and "(" in cold.label and "wheels)" in cold.label
    assert result.figure("wheelhouse_12_cold_cpu").samples[0] > 0
    assert result.figure("wheelhouse_12_warm").samples[0] < cold.samples[0]
    assert result.figure("wheelhouse_12_one_changed").samples[0] > 0
    assert result.figure("wheelhouse_12_size").samples[0] > 1  # MiB: uv's wheel alone is more
    assert result.targets == []  # the issue sets goals for 400 and 1,000 modules only

    report = RunReport("smoke", "start", "end", 1.0, {}, {"cpus": 2}, [result])
    json_path, _, markdown = write_report(report, tmp_path / "results", "bench-smoke")
    assert json.loads(json_path.read_text(encoding="utf-8"))["parts"][0]["name"] == "wheelhouse"
    assert "## 6. Wheelhouse on the controller" in markdown


def test_one_pin_changed_gives_a_module_a_set_of_its_own(tmp_path: Path) -> None:
    tree = generated_tree(tmp_path / "tree", 20, seed=3, with_services=False, distinct_sets=10)
    before = {path: path.read_text() for path in tree.glob("*/gen-*/requirements.txt")}
    what = change_one_pin(tree)
    after = {path: path.read_text() for path in tree.glob("*/gen-*/requirements.txt")}
    changed = [path for path in before if before[path] != after[path]]
    assert len(changed) == 1 and " -> " in what
    assert after[changed[0]] not in before.values()  # a set no module had
