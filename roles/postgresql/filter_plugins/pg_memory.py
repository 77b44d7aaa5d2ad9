"""Memory sizes derived from the host's memory, clamped and rounded the way PostgreSQL wants them."""

from __future__ import annotations


def pg_memory_clamp(megabytes: int | float | str, low: int, high: int, step: int = 1) -> int:
    """Clamp a derived size into [low, high] and round it down to a multiple of step (all in MB)."""
    mb = max(low, min(high, int(float(megabytes))))
    return max(step, mb - mb % step)


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"pg_memory_clamp": pg_memory_clamp}
