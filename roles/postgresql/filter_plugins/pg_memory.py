"""Memory sizes derived from the host's memory, clamped and rounded the way PostgreSQL wants them."""

from __future__ import annotations


def pg_memory_clamp(megabytes: int | float | str, low: int, high: int, step: int = 1) -> int:
    """Clamp a derived size into [low, high] and round it down to a multiple of step (all in MB)."""
    mb = max(low, min(high, int(float(megabytes))))
    return max(step, mb - mb % step)


def pg_memory_setting(megabytes: int | float | str) -> str:
    """A size in MB as PostgreSQL's SHOW prints it: in the largest unit it is a whole number of
    (1024MB is "1GB"). The role writes sizes so, and its settings loop then finds them equal to
    the running text instead of sending each to the module on every run."""
    mb = int(float(megabytes))
    for unit, size in (("TB", 1024 * 1024), ("GB", 1024)):
        if mb and mb % size == 0:
            return f"{mb // size}{unit}"
    return f"{mb}MB"


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"pg_memory_clamp": pg_memory_clamp, "pg_memory_setting": pg_memory_setting}
