"""The PLAY RECAP and profile_tasks parsers, on a recorded converge of the default scenario."""

from pathlib import Path

import pytest
from barestack_bench.ansible_output import HostRecap, parse_play_recap, parse_task_timings
from barestack_bench.phases import OTHER, PHASES, phase_of, phase_seconds

SAMPLE = (Path(__file__).parent / "samples" / "ansible-converge.txt").read_text(encoding="utf-8")


def test_play_recap_counts_per_host() -> None:
    assert parse_play_recap(SAMPLE) == {
        "bench-try": HostRecap(ok=124, changed=59, unreachable=0, failed=0, skipped=7, rescued=0, ignored=0)
    }


def test_play_recap_absent_gives_nothing() -> None:
    assert parse_play_recap("PLAY [x] ***\nfatal: [h]: UNREACHABLE!\n") == {}


def test_task_timings_keep_order_names_and_seconds() -> None:
    timings = parse_task_timings(SAMPLE)
    assert len(timings) == 127
    assert timings[0].name == "Gathering Facts"
    assert timings[0].seconds == pytest.approx(1.01)
    assert timings[-1].name == "app : Remove old, failed and unfinished releases"
    by_name = {timing.name: timing.seconds for timing in timings}
    # A name longer than the dashes' column and a name with punctuation both parse.
    assert (
        by_name["app : Let nginx reach the web services' sockets (their groups, not the app group)"] == 0.44
    )
    assert by_name["postgresql : Install PostgreSQL 17"] == pytest.approx(15.16)
    # profile_tasks' total (0:01:36.696) is the sum of its lines.
    assert sum(timings_seconds := [t.seconds for t in timings]) == pytest.approx(96.7, abs=0.1)
    assert all(seconds >= 0 for seconds in timings_seconds)


def test_task_timings_absent_gives_nothing() -> None:
    assert parse_task_timings("PLAY RECAP ***\nhost : ok=1 changed=0 unreachable=0 failed=0\n") == []


def test_phases_cover_the_converge_and_add_up() -> None:
    timings = parse_task_timings(SAMPLE)
    phases = phase_seconds(timings)
    assert set(phases) == set(PHASES)
    assert sum(phases.values()) == pytest.approx(sum(t.seconds for t in timings))
    assert phases[OTHER] == 0.0, [t.name for t in timings if phase_of(t.name) == OTHER]
    assert phases["apt packages"] == pytest.approx(2.37 + 0.45 + 4.72 + 15.16 + 3.71 + 3.30)
    assert phases["venvs"] == pytest.approx(1.90)
    assert phases["wheelhouse"] == pytest.approx(0.38 + 1.64 + 0.71)


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        (
            "app : Validating arguments against arg spec 'main' - Deploy the barestack services",
            "facts and validation",
        ),
        ("app : Check health through Nginx", "services"),
        ("app : Build one venv per module and per service", "venvs"),
        ("nginx : Write the barestack site", "data and web configuration"),
        ("redis : Install Redis", "apt packages"),
        ("firewall : Install nftables", "apt packages"),
        ("backup : Install pgBackRest", "apt packages"),
        ("app : Install unzip and polkit", "apt packages"),
        ("app : Install the operator's barestack-api-token command", "services"),
        ("some_new_role : Do a thing", OTHER),
    ],
)
def test_phase_of(name: str, phase: str) -> None:
    assert phase_of(name) == phase
