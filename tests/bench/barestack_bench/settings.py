"""The bench's knobs, with the values `make bench` uses, and the repository paths it relies on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from barestack_bench.wrk import WrkSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
SERVICES_DIR = REPO_ROOT / "services"
VENV_MANAGER = SERVICES_DIR / "tools" / "venv_manager.py"
NAIVE_PLAYBOOK = REPO_ROOT / "tests" / "bench" / "playbooks" / "naive_venvs.yml"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
# What runs the services on the bench's machines (the app role's app_process_manager).
PROCESS_MANAGERS = ("systemd", "supervisor")
# The bench's controller-side state (gitignored .cache/): its own wheelhouse cache, apart from
# other runs', and the source trees it deploys. The trees keep the same paths from run to run, as a
# checkout does: the role keys its wheelhouse cache on the source path, and a user's deploys come
# from one checkout, so a new path per run would time a PyPI download into every deploy.
BENCH_CACHE = REPO_ROOT / ".cache" / "bench"
WHEELHOUSE_CACHE_DIR = BENCH_CACHE / "wheelhouse"
TREES_DIR = BENCH_CACHE / "trees"


@dataclass(frozen=True)
class BenchSettings:
    """Sizes, repetitions and load settings; defaults are the full run (under 30 min on 2 cores)."""

    iterations: int = 3
    release: str = "trixie"
    machine_name: str = "bench-stack"
    # app_process_manager in the bench machines' inventory (host_vars); the role's default is systemd.
    process_manager: str = "systemd"
    # Part 3: module counts measured for real, and the naive baseline's measured sample.
    module_counts: tuple[int, ...] = (400, 1000)
    naive_sample: int = 30
    sample_seed: int = 0
    # Part 4: each route at these concurrencies, bounded durations; the baseline's Nginx port.
    request_connections: tuple[int, ...] = (8, 32)
    request_duration_s: float = 10.0
    request_warmup_s: float = 3.0
    request_timeout_s: float = 5.0
    baseline_port: int = 8100
    # Part 5: a steady, moderate load (the deploy shares the machine's two cores with it): the 16
    # connections of the goal, each pausing 200 ms, i.e. about the rate 8 connections
    # pausing 100 ms offered before (well below part 4's capacity).
    deploy_load: WrkSettings = field(default_factory=lambda: WrkSettings(threads=2, connections=16))
    deploy_think_ms: int = 200
    deploy_steady_s: float = 10.0
    keep_machine: bool = False
    # Parts 1 and 2: the application the converged stack deploys, services/ plus modules from
    # generate_modules.py's realistic mode (that many modules over that many distinct sets).
    stack_modules: int = 400
    stack_distinct_sets: int = 250
    # Part 6: (modules, distinct requirement sets) of the realistic trees the wheelhouse is built for.
    wheelhouse_scales: tuple[tuple[int, int], ...] = ((400, 250), (1000, 600))
    # Part 7: the generated database's size and the part's own machine (it loads and restores it).
    backup_size_mb: int = 1024
    backup_machine_name: str = "bench-backup"

    def __post_init__(self) -> None:
        if self.process_manager not in PROCESS_MANAGERS:
            raise ValueError(
                f"the process manager is one of {', '.join(PROCESS_MANAGERS)}, got {self.process_manager!r}"
            )
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if not self.module_counts or any(count < 1 for count in self.module_counts):
            raise ValueError(f"module counts must be positive, got {self.module_counts}")
        if self.naive_sample < 1:
            raise ValueError(f"the naive sample needs at least one module, got {self.naive_sample}")
        if not 1024 <= self.baseline_port <= 65535 or self.baseline_port in (8001, 8002, 8003):
            raise ValueError(f"baseline port {self.baseline_port} is privileged or one the app role uses")
        if not self.request_connections or any(count < 2 for count in self.request_connections):
            raise ValueError(f"request concurrencies must be 2 or more, got {self.request_connections}")
        if not 1 <= self.stack_distinct_sets <= self.stack_modules:
            raise ValueError(
                "the stack's tree needs 1 <= distinct sets <= modules, got "
                f"{self.stack_distinct_sets} sets for {self.stack_modules} modules"
            )
        if not self.wheelhouse_scales or any(
            not 1 <= sets <= count for count, sets in self.wheelhouse_scales
        ):
            raise ValueError(
                f"wheelhouse scales are (modules, sets) with 1 <= sets <= modules: {self.wheelhouse_scales}"
            )
        if not 16 <= self.backup_size_mb <= 65536:
            raise ValueError(f"the backup part's database is 16 to 65536 MiB, got {self.backup_size_mb}")
        if self.backup_machine_name == self.machine_name:
            raise ValueError("the backup part needs a machine of its own: pick another --machine-name")
        if self.request_duration_s < 1:
            raise ValueError(f"a request run lasts at least 1 s, got {self.request_duration_s}")
