"""State files: round trip, half-written or corrupt state, listing."""

from pathlib import Path

import pytest
from testmachines.settings import Settings, load_settings
from testmachines.state import MachineState, load_state, machine_names, read_pid, save_state, write_pid


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"BARESTACK_MACHINES_DIR": str(tmp_path)})


def _state(name: str) -> MachineState:
    return MachineState(
        name=name,
        release="trixie",
        address="10.213.0.2",
        prefix_length=24,
        gateway="10.213.0.1",
        bridge="bstest0",
        netns=f"bst-{name}",
        host_veth="bsv0123456789ab",
        lower="/var/lib/barestack-machines/cache/rootfs-trixie-0123",
        storage="overlay",
        merged=f"/var/lib/barestack-machines/machines/{name}/merged",
        status="creating",
        created_at=1.5,
    )


def test_state_round_trips(settings: Settings) -> None:
    save_state(settings, _state("web"))
    assert load_state(settings, "web") == _state("web")


def test_corrupt_state_reads_as_none_instead_of_crashing(settings: Settings) -> None:
    directory = settings.machine_dir("web")
    directory.mkdir(parents=True)
    (directory / "state.json").write_text('{"name": "web", "rele')
    assert load_state(settings, "web") is None
    assert machine_names(settings) == ["web"]  # still listed, so destroy can clean it up


def test_missing_state_and_pid(settings: Settings) -> None:
    assert load_state(settings, "nothing") is None
    assert read_pid(settings, "nothing") is None
    assert machine_names(settings) == []


def test_pid_round_trips_and_garbage_is_ignored(settings: Settings) -> None:
    save_state(settings, _state("web"))
    write_pid(settings, "web", 4242)
    assert read_pid(settings, "web") == 4242
    (settings.machine_dir("web") / "pid").write_text("not a pid\n")
    assert read_pid(settings, "web") is None


def test_machine_names_are_sorted_and_ignore_stray_files(settings: Settings) -> None:
    for name in ("db", "app", "web"):
        save_state(settings, _state(name))
    (settings.machines_dir / "README").write_text("not a machine")
    assert machine_names(settings) == ["app", "db", "web"]


def test_no_temporary_files_are_left_after_saving(settings: Settings) -> None:
    save_state(settings, _state("web"))
    save_state(settings, _state("web"))
    assert sorted(path.name for path in settings.machine_dir("web").iterdir()) == ["state.json"]
