"""Group a run's task timings into the phases the report shows (apt, wheelhouse, venvs, services...).

Task names are the roles' own; a task matching no rule lands in "other" rather than vanishing, so
the phases always add up to the run's total and a renamed task shows up in the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from barestack_bench.ansible_output import TaskTiming

DATA_AND_WEB_ROLES = "common|postgresql|redis|app_env|nginx"

# First match wins, so the order matters: argument validation inside the app role is validation,
# not "services"; the app role's remaining tasks are what it takes to run the services.
PHASE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "facts and validation",
        re.compile(
            r"^(Gathering Facts$|Record this host's private address$|Validate the roles"
            r"|\w+ : Validating arguments against arg spec"
            r"|\w+ : Check .* values argument_specs cannot express)"
        ),
    ),
    (
        "apt packages",
        re.compile(
            rf"^({DATA_AND_WEB_ROLES}) : (Install |Fetch apt's package lists|Look for apt's)"
            r"|^(firewall : Install nftables|backup : Install pgBackRest"
            r"|app : Install (unzip and polkit|supervisor))$"
        ),
    ),
    ("wheelhouse", re.compile(r"^app : (Build the wheelhouse|Copy the wheelhouse|Unpack uv)")),
    ("venvs", re.compile(r"^app : Build one venv per module")),
    (
        "release copy",
        re.compile(
            r"^app : (Hash the source tree|Read the current release|Decide whether this run makes a release"
            r"|Record where this run's release lives|Create the release directory|Copy the source tree"
            r"|Record the release$)"
        ),
    ),
    ("services", re.compile(r"^app : ")),
    ("data and web configuration", re.compile(rf"^({DATA_AND_WEB_ROLES}) : ")),
)
OTHER = "other"
PHASES: tuple[str, ...] = (*(name for name, _ in PHASE_RULES), OTHER)


def phase_of(task_name: str) -> str:
    for phase, rule in PHASE_RULES:
        if rule.search(task_name):
            return phase
    return OTHER


def phase_seconds(timings: Iterable[TaskTiming]) -> dict[str, float]:
    """Seconds per phase, every phase present (0.0 when none of its tasks ran)."""
    totals = dict.fromkeys(PHASES, 0.0)
    for timing in timings:
        totals[phase_of(timing.name)] += timing.seconds
    return totals
