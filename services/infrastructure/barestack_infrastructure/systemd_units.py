"""The barestack systemd units: state, since when, restarts, and recent warnings from journald.

All units are read with one ``systemctl show`` call (it takes many units), and the journals
concurrently, so the cost stays flat as units are added. On a machine where systemd is not
PID 1 (containers, this project's controller) nothing is invented: every unit is reported as
unknown with the reason.
"""

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barestack_common.redact import redact

SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "ActiveEnterTimestamp", "NRestarts")
JOURNAL_LINES = 5
SYSTEMD_RUNTIME_DIR = Path("/run/systemd/system")  # exists only when systemd is PID 1 (sd_booted)
NOT_AVAILABLE = "systemd not available"


@dataclass(frozen=True)
class UnitStatus:
    unit: str
    known: bool  # False: systemd could not be asked; ``problem`` says why
    load_state: str = ""
    active_state: str = ""
    sub_state: str = ""
    since: str = ""
    restarts: int | None = None
    recent_warnings: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def active(self) -> bool:
        return self.known and self.active_state == "active"

    @property
    def summary(self) -> str:
        if not self.known:
            return f"unknown: {self.problem}"
        if self.load_state == "not-found":
            return "not installed"
        return f"{self.active_state} ({self.sub_state})" if self.sub_state else self.active_state

    def to_json(self) -> dict[str, Any]:
        return {
            "known": self.known,
            "summary": self.summary,
            "load_state": self.load_state or None,
            "active_state": self.active_state or None,
            "sub_state": self.sub_state or None,
            "since": self.since or None,
            "restarts": self.restarts,
            "recent_warnings": self.recent_warnings,
            "problem": self.problem,
        }


def parse_show(output: str) -> list[dict[str, str]]:
    """``systemctl show`` prints one block of key=value lines per unit, blocks separated by a blank line."""
    blocks: list[dict[str, str]] = []
    for chunk in output.strip().split("\n\n"):
        properties = dict(line.split("=", 1) for line in chunk.splitlines() if "=" in line)
        if properties:
            blocks.append(properties)
    return blocks


def _status_from(unit: str, properties: dict[str, str]) -> UnitStatus:
    restarts = properties.get("NRestarts", "")
    return UnitStatus(
        unit=unit,
        known=True,
        load_state=properties.get("LoadState", ""),
        active_state=properties.get("ActiveState", ""),
        sub_state=properties.get("SubState", ""),
        since=properties.get("ActiveEnterTimestamp", ""),
        restarts=int(restarts) if restarts.isdigit() else None,
    )


def _unit_id(unit: str) -> str:
    return unit if "." in unit else f"{unit}.service"


class SystemdReader:
    def __init__(
        self,
        timeout_s: float,
        secrets: Iterable[str] = (),
        runtime_dir: Path = SYSTEMD_RUNTIME_DIR,
        systemctl: str = "systemctl",
        journalctl: str = "journalctl",
    ) -> None:
        self.timeout_s = timeout_s
        self.secrets = list(secrets)
        self.runtime_dir = runtime_dir
        self.systemctl = shutil.which(systemctl)
        self.journalctl = shutil.which(journalctl)

    def available(self) -> bool:
        return self.systemctl is not None and self.runtime_dir.is_dir()

    def _run(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def units(self, units: Sequence[str]) -> list[UnitStatus]:
        if not self.available():
            return [UnitStatus(unit, known=False, problem=NOT_AVAILABLE) for unit in units]
        try:
            shown = self._run(
                [
                    self.systemctl or "systemctl",
                    "show",
                    f"--property={','.join(SHOW_PROPERTIES)}",
                    "--",
                    *units,
                ]
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return [
                UnitStatus(unit, known=False, problem=f"systemctl failed: {error.__class__.__name__}")
                for unit in units
            ]
        if shown.returncode != 0:
            reason = " ".join(shown.stderr.split())[:200] or f"exit status {shown.returncode}"
            return [UnitStatus(unit, known=False, problem=f"systemctl failed: {reason}") for unit in units]
        by_id = {block.get("Id", ""): block for block in parse_show(shown.stdout)}
        statuses = [
            _status_from(unit, by_id.get(_unit_id(unit), {"LoadState": "not-found"})) for unit in units
        ]
        with ThreadPoolExecutor(max_workers=min(8, len(units) or 1)) as pool:
            warnings = list(pool.map(self.recent_warnings, units))
        return [
            UnitStatus(**{**status.__dict__, "recent_warnings": lines})
            for status, lines in zip(statuses, warnings, strict=True)
        ]

    def recent_warnings(self, unit: str) -> list[str]:
        if self.journalctl is None:
            return ["(journalctl not installed)"]
        command = [
            self.journalctl,
            "-u",
            unit,
            "-p",
            "warning",
            "-n",
            str(JOURNAL_LINES),
            "-o",
            "cat",
            "--no-pager",
        ]
        try:
            result = self._run(command)
        except (OSError, subprocess.TimeoutExpired) as error:
            return [f"(journal not readable: {error.__class__.__name__})"]
        lines = [redact(line, self.secrets) for line in result.stdout.splitlines() if line.strip()]
        if not lines and result.stderr.strip():
            # e.g. "No journal files were opened due to insufficient permissions."
            return [f"(journal: {' '.join(result.stderr.split())[:200]})"]
        return lines[-JOURNAL_LINES:]
