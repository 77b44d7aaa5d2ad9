#!/usr/bin/env python3
"""Poll HTTP checks until all pass or a deadline passes; print JSON naming the failures.

Run on the host by the deploy's health gate (ansible.builtin.script): one task for every check,
all polled together, so a broken release is detected in one deadline rather than one per check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def status_of(url: str, timeout: float) -> int | str:
    request = urllib.request.Request(url, headers={"User-Agent": "barestack-health-gate"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError) as error:
        return f"{type(error).__name__}: {getattr(error, 'reason', error)}"


def parse_check(text: str) -> tuple[str, int]:
    path, _, status = text.rpartition("=")
    if not path.startswith("/") or not status.isdigit():
        raise argparse.ArgumentTypeError(f"a check is PATH=STATUS, e.g. /api/health=200 (got {text!r})")
    return path, int(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="e.g. http://127.0.0.1")
    parser.add_argument("--check", type=parse_check, action="append", required=True, help="PATH=STATUS")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds to wait for all checks")
    parser.add_argument("--interval", type=float, default=1.0)
    arguments = parser.parse_args()

    pending = dict(arguments.check)
    last: dict[str, int | str] = {}
    give_up = time.monotonic() + arguments.deadline
    while True:
        for path, expected in list(pending.items()):
            last[path] = status_of(arguments.base.rstrip("/") + path, timeout=min(5.0, arguments.deadline))
            if last[path] == expected:
                del pending[path]
        if not pending or time.monotonic() >= give_up:
            break
        time.sleep(arguments.interval)
    failed = [{"path": path, "expected": expected, "got": last[path]} for path, expected in pending.items()]
    print(json.dumps({"passed": not failed, "failed": failed, "last": last}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
