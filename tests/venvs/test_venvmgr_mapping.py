"""The venv hash and venv_mapping.json: deterministic, atomic, untouched when unchanged."""

import json
import os
from pathlib import Path

import pytest
from venvmgr.build import installed_packages
from venvmgr.discovery import VenvManagerError
from venvmgr.plan import load_mapping_venvs, render_mapping, venv_hash, write_if_changed


def test_hash_depends_on_requirements_and_full_python_version() -> None:
    base = venv_hash(("packaging==24.2",), "3.13.5")
    assert base == venv_hash(("packaging==24.2",), "3.13.5")
    assert len(base) == 64
    assert base != venv_hash(("packaging==23.2",), "3.13.5")
    assert base != venv_hash(("packaging==24.2",), "3.13.6")  # a point release rebuilds
    assert base != venv_hash((), "3.13.5")
    assert venv_hash((), "3.11.2") != venv_hash((), "3.13.5")


def test_render_is_deterministic_and_sorted() -> None:
    venvs = {"frontend/ui-001": {"b": 1, "a": 2}, "backend": {"z": None}}
    text = render_mapping("3.13.5", venvs)
    assert text == render_mapping("3.13.5", dict(reversed(list(venvs.items()))))
    document = json.loads(text)
    assert document == {"format": 1, "python": "3.13.5", "venvs": venvs}
    assert list(document["venvs"]) == ["backend", "frontend/ui-001"]
    assert text.endswith("\n")


def test_write_if_changed_leaves_an_identical_file_alone(tmp_path: Path) -> None:
    mapping = tmp_path / "shared" / "venv_mapping.json"
    text = render_mapping("3.11.2", {})
    assert write_if_changed(mapping, text) is True
    before = os.stat(mapping)

    assert write_if_changed(mapping, text) is False

    after = os.stat(mapping)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert oct(after.st_mode & 0o777) == oct(0o644)


def test_write_if_changed_replaces_atomically_without_leftovers(tmp_path: Path) -> None:
    mapping = tmp_path / "venv_mapping.json"
    write_if_changed(mapping, render_mapping("3.11.2", {}))
    old_inode = os.stat(mapping).st_ino
    reader = mapping.open()  # a reader that opened the old file keeps reading the old file

    assert write_if_changed(mapping, render_mapping("3.11.2", {"backend": {}})) is True

    assert os.stat(mapping).st_ino != old_inode  # a new file renamed over, not rewritten in place
    assert json.loads(reader.read())["venvs"] == {}
    reader.close()
    assert json.loads(mapping.read_text())["venvs"] == {"backend": {}}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["venv_mapping.json"]


def test_missing_mapping_means_no_venvs_yet(tmp_path: Path) -> None:
    assert load_mapping_venvs(tmp_path / "venv_mapping.json") == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": 2, "venvs": {}}', "not a format 1 venv mapping"),
        ('{"format": 1, "venvs": []}', "no valid 'venvs' object"),
        ('{"format": 1, "venvs": {"../etc": {}}}', "invalid venv keys: ../etc"),
    ],
)
def test_broken_mapping_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    mapping = tmp_path / "venv_mapping.json"
    mapping.write_text(content)
    with pytest.raises(VenvManagerError, match=message):
        load_mapping_venvs(mapping)


def test_installed_packages_read_from_dist_info(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.13" / "site-packages"
    for folder, name, version in [
        ("packaging-24.2.dist-info", "packaging", "24.2"),
        ("MarkupSafe-3.0.2.dist-info", "MarkupSafe", "3.0.2"),
    ]:
        (site / folder).mkdir(parents=True)
        (site / folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not-a-header\n"
        )
    (site / "broken-1.0.dist-info").mkdir()
    (site / "broken-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\n")
    assert installed_packages(tmp_path) == {"markupsafe": "3.0.2", "packaging": "24.2"}
    assert installed_packages(tmp_path / "absent") == {}
