"""Reports disk usage of some paths and the host's memory, and flags what is nearly full.

Usage: python app.py [--max-percent N] [PATH...]    (PATH defaults to /, N to 90)
Prints {"memory": {"total_bytes", "available_bytes", "used_percent"}, "disks": [{"path",
"total_bytes", "free_bytes", "used_percent", "over_limit"}], "max_percent": N}; exits 1 if
memory or any disk is used above N percent, 2 on a bad argument.
"""

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from barestack_common.module import EXIT_BAD_INPUT, emit_json, fail

MEMINFO = Path("/proc/meminfo")


def read_meminfo(text: str) -> dict[str, int]:
    """``MemTotal:  16316412 kB`` lines -> {"MemTotal": 16707305888} (bytes)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[name] = int(fields[0]) * (1024 if fields[1:2] == ["kB"] else 1)
    return values


def percent(used: int, total: int) -> float:
    return round(100.0 * used / total, 1) if total else 0.0


def memory_report() -> dict[str, Any]:
    info = read_meminfo(MEMINFO.read_text(encoding="ascii"))
    total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    return {
        "total_bytes": total,
        "available_bytes": available,
        "used_percent": percent(total - available, total),
    }


def disk_report(path: str, max_percent: float) -> dict[str, Any]:
    usage = shutil.disk_usage(path)
    used_percent = percent(usage.total - usage.free, usage.total)
    return {
        "path": path,
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_percent": used_percent,
        "over_limit": used_percent > max_percent,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="infra-001", add_help=False)
    parser.add_argument("--max-percent", type=float, default=90.0)
    parser.add_argument("paths", nargs="*", default=["/"])
    arguments, unknown = parser.parse_known_args(argv)
    if unknown or not 0 < arguments.max_percent <= 100:
        fail("usage: app.py [--max-percent N (0-100]] [PATH...]", EXIT_BAD_INPUT)
    missing = [path for path in arguments.paths if not Path(path).exists()]
    if missing:
        fail(f"no such path: {', '.join(missing)}", EXIT_BAD_INPUT)
    memory = memory_report()
    disks = [disk_report(path, arguments.max_percent) for path in arguments.paths]
    emit_json({"memory": memory, "disks": disks, "max_percent": arguments.max_percent})
    over = memory["used_percent"] > arguments.max_percent or any(disk["over_limit"] for disk in disks)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
