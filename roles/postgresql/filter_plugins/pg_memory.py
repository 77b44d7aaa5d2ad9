"""Memory sizes written the way PostgreSQL shows them.

community.postgresql.postgresql_set compares the wanted value with what `SHOW` prints as
strings, so "1024MB" against PostgreSQL's "1GB" would look like a change on every run.
"""

from __future__ import annotations

UNITS = (("TB", 1024 * 1024), ("GB", 1024), ("MB", 1))


def pg_memory(megabytes: int | float | str) -> str:
    """Render a whole number of megabytes in the largest unit that divides it, as PostgreSQL does."""
    mb = int(float(megabytes))
    if mb <= 0:
        raise ValueError(f"pg_memory: a memory size must be positive, got {megabytes!r}")
    for suffix, factor in UNITS:
        if mb % factor == 0:
            return f"{mb // factor}{suffix}"
    raise AssertionError("unreachable: MB divides every whole number")


def pg_memory_clamp(megabytes: int | float | str, low: int, high: int, step: int = 1) -> int:
    """Clamp a derived size into [low, high] and round it down to a multiple of step (all in MB)."""
    mb = max(low, min(high, int(float(megabytes))))
    return max(step, mb - mb % step)


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"pg_memory": pg_memory, "pg_memory_clamp": pg_memory_clamp}
