"""Build the venvs a plan asks for, in parallel; each one fails alone."""

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .installed import installed_packages
from .plan import PlannedVenv
from .swap import swap_in, temp_path_beside
from .uv import Uv, UvError


@dataclass(frozen=True)
class BuildResult:
    key: str
    error: str | None = None
    packages: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def build_venv(planned: PlannedVenv, uv: Uv, python: str, wheelhouse: Path) -> BuildResult:
    """Build one venv into a temp dir and swap it in; on any failure the old venv stays."""
    final = planned.venv_path
    temp = temp_path_beside(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        uv.create_venv(temp, python)
        if planned.requirements:
            uv.install(temp, planned.requirements, wheelhouse)
        swap_in(temp, final)
    except (UvError, OSError) as error:
        shutil.rmtree(temp, ignore_errors=True)
        return BuildResult(planned.key, error=str(error))
    return BuildResult(planned.key, packages=installed_packages(final))


def build_all(
    builds: list[PlannedVenv],
    jobs: int,
    build_one: Callable[[PlannedVenv], BuildResult],
) -> dict[str, BuildResult]:
    """Results by key. uv does the work in subprocesses, so threads are enough to use the cores."""
    if not builds:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(build_one, builds))
    return {result.key: result for result in results}
