"""A module whose requirements cannot be met fails alone; its old venv and mapping entry stay."""

import json

from venvmgr_testkit import Layout, write_module


def test_unsatisfiable_requirements_fail_alone(sample_layout: Layout) -> None:
    layout = sample_layout
    _, exit_code, stderr = layout.build()
    assert exit_code == 0, stderr
    before = layout.mapping_document()["venvs"]

    # A new module that can never build, an existing one whose update cannot build,
    # a healthy new module, and a healthy update: only the first two may fail.
    write_module(layout.services, "backend/a-009", ["packaging==99.0"])
    (layout.services / "backend" / "a-002" / "requirements.txt").write_text("packaging==99.1\n")
    write_module(layout.services, "frontend/ui-010", ["six==1.17.0"])
    (layout.services / "backend" / "a-001" / "requirements.txt").write_text("packaging==24.2\nidna==3.10\n")

    report, exit_code, _ = layout.build()

    assert exit_code == 1
    failed = {failure["venv"]: failure["error"] for failure in report["failed"]}
    assert sorted(failed) == ["backend/a-002", "backend/a-009"]
    assert failed["backend/a-009"].startswith("backend/a-009: ")
    assert "packaging==99.0" in failed["backend/a-009"]  # uv's own explanation, naming the pin
    assert "packaging==99.1" in failed["backend/a-002"]
    assert report["created"] == ["frontend/ui-010"]
    assert report["updated"] == ["backend/a-001"]
    assert report["changed"] is True

    after = layout.mapping_document()["venvs"]
    assert "backend/a-009" not in after
    assert after["backend/a-002"] == before["backend/a-002"]  # still describes the venv in place
    assert after["frontend/ui-010"]["packages"] == {"six": "1.17.0"}
    assert after["backend/a-001"]["packages"] == {"idna": "3.10", "packaging": "24.2"}
    still_old = layout.run_module("backend/a-002")
    assert still_old.returncode == 0 and json.loads(still_old.stdout)["packaging"] == "23.2"
    assert json.loads(layout.run_module("frontend/ui-010").stdout) == {"six": "1.17.0"}
    assert not (layout.venvs / "backend" / "a-009").exists()
    assert [path.name for path in layout.venvs.glob("*/.*")] == []  # no temp dirs left behind

    # Fixing the pin heals it on the next run; the others are left alone.
    (layout.services / "backend" / "a-009" / "requirements.txt").write_text("packaging==23.2\n")
    report, exit_code, _ = layout.build()
    assert exit_code == 1 and [failure["venv"] for failure in report["failed"]] == ["backend/a-002"]
    assert report["created"] == ["backend/a-009"] and report["updated"] == []
