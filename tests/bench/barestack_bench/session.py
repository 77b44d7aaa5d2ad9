"""State shared by the parts of one bench run: its work folder, logs and the converged test machine.

Parts run alone or one after another. A part that needs a converged stack takes the one an earlier
part left (part 1 leaves its last freshly converged machine) or converges one itself, untimed.
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barestack_bench.ansible_run import PlaybookRun, run_playbook
from barestack_bench.machines import BenchMachine, write_inventory
from barestack_bench.project import snapshot_project
from barestack_bench.settings import TREES_DIR, WHEELHOUSE_CACHE_DIR, BenchSettings
from barestack_bench.sources import copy_services, generated_tree


@dataclass
class Stack:
    """The bench's test machine, its inventory, and the source tree deployed on it (if any)."""

    machine: BenchMachine
    inventory: Path
    # The source tree last deployed by site.yml (a rollback does not change it).
    tree: Path | None = None

    @property
    def address(self) -> str:
        return self.machine.entry.address


class Session:
    def __init__(self, settings: BenchSettings, work_dir: Path) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.run_id = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        work_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(work_dir, 0o700)  # holds the generated secrets and full ansible logs
        self.secrets_dir = work_dir / "secrets"
        # Every playbook of the run comes from this copy, taken now (see project.py).
        self.project = snapshot_project(work_dir / "project")
        self._default_tree: Path | None = None
        self._stack_tree: Path | None = None
        self._log_numbers = itertools.count(1)
        self._stack: Stack | None = None
        # Given by the CLI for routes behind authentication (parts.requests.Credentials); kept off
        # the settings, which the report prints.
        self.credentials: Any = None

    def log_path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
        return self.work_dir / "logs" / f"{next(self._log_numbers):03d}-{safe}.log"

    def progress(self, message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def default_tree(self) -> Path:
        """The default scenario's application: services/ as copied at the first call (the CLI makes
        that the start of the run), at a stable path. Every other tree of the run derives from it."""
        if self._default_tree is None:
            self._default_tree = copy_services(TREES_DIR / "services")
        return self._default_tree

    def stack_tree(self) -> Path:
        """What the converged stack deploys (parts 1 and 2): the default tree plus
        ``stack_modules`` realistic generated modules over ``stack_distinct_sets`` requirement sets,
        as a real code base's modules vary, at a stable path (the wheelhouse cache is keyed on it)."""
        if self._stack_tree is None:
            settings = self.settings
            self._stack_tree = generated_tree(
                TREES_DIR / f"stack-{settings.stack_modules}-{settings.stack_distinct_sets}",
                settings.stack_modules,
                settings.sample_seed,
                self.default_tree(),
                distinct_sets=settings.stack_distinct_sets,
            )
        return self._stack_tree

    def site(
        self,
        stack: Stack,
        tree: Path,
        label: str,
        environment: dict[str, str] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> PlaybookRun:
        """Converge site.yml on the stack, deploying the source tree ``tree`` (``environment``:
        extra variables for the ansible-playbook process, e.g. an empty UV_CACHE_DIR; ``overrides``:
        extra vars for this run only, e.g. a gunicorn setting the deploy part changes)."""
        extra_vars: dict[str, Any] = {
            "app_source_dir": str(tree),
            "app_wheelhouse_cache_dir": str(WHEELHOUSE_CACHE_DIR),
            # The hello-world baseline is hit directly, past Nginx: the host's firewall lets the
            # controller reach its port (on every converge, so a re-run stays changed=0).
            "firewall_extra_rules": [
                {
                    "name": "bench-baseline",
                    "proto": "tcp",
                    "ports": [self.settings.baseline_port],
                    "from": ["0.0.0.0/0"],
                }
            ],
            **(overrides or {}),
        }
        run = run_playbook(
            self.project,
            self.project.site,
            stack.inventory,
            self.log_path(label),
            self.secrets_dir,
            extra_vars,
            environment=environment,
        )
        stack.tree = tree
        return run

    def host_vars(self) -> dict[str, Any]:
        """What every bench machine's inventory sets for its host (--process-manager)."""
        return {"app_process_manager": self.settings.process_manager}

    def fresh_stack(self) -> Stack:
        """A new, empty machine (the previous bench machine, if any, is destroyed first)."""
        self.close()
        machine = BenchMachine.create(self.settings.machine_name, self.settings.release)
        inventory = write_inventory(
            self.work_dir / "inventory", [machine.entry], self.project.local_group_vars, self.host_vars()
        )
        self._stack = Stack(machine=machine, inventory=inventory)
        return self._stack

    def adopt(self, stack: Stack) -> None:
        self._stack = stack

    def converged_stack(self) -> Stack:
        """The stack an earlier part converged, or a new one converged now (not timed)."""
        if self._stack is None:
            stack = self.fresh_stack()
            self.progress(f"converging {stack.machine.name} for this part (not timed)")
            self.site(stack, self.stack_tree(), "prepare-converge")
        assert self._stack is not None
        return self._stack

    def close(self) -> None:
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        if self.settings.keep_machine:
            self.progress(f"keeping {stack.machine.name} at {stack.address} (--keep-machine)")
            return
        stack.machine.destroy()
