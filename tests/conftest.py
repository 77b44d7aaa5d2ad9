"""Skips are counted, and a skip nobody explained fails the run.

A test that skips in CI proves nothing, while the run stays green: a PostgreSQL pinned to a version
the controller does not have once skipped 80 tests unnoticed. So every skip's reason is checked
against EXPLAINED_SKIPS, the reasons a test may give for not running on this machine. Each starts
with CANNOT_RUN_HERE and says why the test cannot run here and where it does run. Any other skip
(a missing binary, an import that failed, a plain ``pytest.skip()``) makes the session fail after
every test ran, with the count and each unexplained reason printed at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

pytest_plugins = ["pytester"]

CANNOT_RUN_HERE = "cannot run here: "

# Every reason a test may skip for. Use the string itself (a suffix may add detail).
EXPLAINED_SKIPS: tuple[str, ...] = (
    # make test runs as root; a developer's unprivileged run skips what needs it.
    CANNOT_RUN_HERE + "needs root (make test runs as root)",
    # A wheelhouse for another CPython than the controller's needs a second CPython installed; Debian
    # ships one per release, so stock controllers (CI) have none.
    CANNOT_RUN_HERE + "one CPython minor version on this controller (Debian ships one per release)",
)

assert all(reason.startswith(CANNOT_RUN_HERE) for reason in EXPLAINED_SKIPS)


def is_explained(reason: str) -> bool:
    return any(reason.startswith(allowed) for allowed in EXPLAINED_SKIPS)


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


@dataclass(eq=False)  # a plugin: registered by identity
class SkipLedger:
    """Every skip of the session (collection and tests), sorted into explained and unexplained."""

    explained: list[str] = field(default_factory=list)
    unexplained: list[tuple[str, str]] = field(default_factory=list)  # (test id, reason)

    def record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = skip_reason(report)
        if is_explained(reason):
            self.explained.append(reason)
        else:
            self.unexplained.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.record(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.unexplained and session.exitstatus in passing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("skips", sep="-")
        count = len(self.explained) + len(self.unexplained)
        write(f"skipped: {count} ({len(self.explained)} explained, {len(self.unexplained)} unexplained)")
        for nodeid, reason in self.unexplained:
            write(f"UNEXPLAINED SKIP {nodeid}: {reason}", red=True)
        if self.unexplained:
            write(
                f"FAILED: {len(self.unexplained)} unexplained skip(s). Make the test run here, or skip it "
                "with a reason from EXPLAINED_SKIPS in tests/conftest.py (why it cannot run here).",
                red=True,
                bold=True,
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipLedger(), "barestack-skip-ledger")
