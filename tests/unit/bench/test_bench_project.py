"""The project snapshot every playbook of a run comes from."""

from pathlib import Path

from barestack_bench.project import snapshot_project


def make_project(root: Path) -> Path:
    (root / "roles" / "app" / "tasks").mkdir(parents=True)
    (root / "roles" / "app" / "tasks" / "main.yml").write_text("---\n", encoding="utf-8")
    (root / "roles" / "app" / "__pycache__").mkdir()
    (root / "roles" / "app" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "inventories" / "local" / "host_vars" / "demo").mkdir(parents=True)
    (root / "inventories" / "local" / "host_vars" / "demo" / "machine.yml").write_text(
        "a: 1\n", encoding="utf-8"
    )
    (root / "playbooks").mkdir()
    (root / "playbooks" / "rollback.yml").write_text("---\n", encoding="utf-8")
    (root / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    (root / "site.yml").write_text("---\n", encoding="utf-8")
    return root


def test_snapshot_copies_the_project_without_generated_files(tmp_path: Path) -> None:
    source = make_project(tmp_path / "repo")
    project = snapshot_project(tmp_path / "copy", source)
    assert project.site.is_file() and project.rollback.is_file() and project.ansible_cfg.is_file()
    assert (project.root / "roles" / "app" / "tasks" / "main.yml").is_file()
    assert not (project.root / "roles" / "app" / "__pycache__").exists()
    assert not (project.root / "inventories" / "local" / "host_vars").exists()


def test_snapshot_hash_follows_content_only(tmp_path: Path) -> None:
    source = make_project(tmp_path / "repo")
    first = snapshot_project(tmp_path / "one", source).content_hash
    assert snapshot_project(tmp_path / "two", source).content_hash == first
    (source / "roles" / "app" / "tasks" / "main.yml").write_text("---\n# edited\n", encoding="utf-8")
    edited = snapshot_project(tmp_path / "one", source)
    assert edited.content_hash != first
    # Taken again into the same place: the old copy is replaced, not merged.
    assert "edited" in (edited.root / "roles" / "app" / "tasks" / "main.yml").read_text(encoding="utf-8")
