#!/usr/bin/env python3
"""The host's deploy lock: one site.yml, deploy.yml or rollback.yml at a time.

deploy_lock.py acquire LOCK_FILE HOLDER_JSON [--stale HOLDER_JSON]
deploy_lock.py release LOCK_FILE HOLDER_JSON

The lock file holds its holder as JSON: controller (host name), pid (ansible-playbook's PID
there) and started (UTC). acquire succeeds when the file is absent, already names this holder (a
play taking it again), or names exactly the holder given as --stale (the controller found that
PID dead). Otherwise it exits 3 printing the holder. The check and the write happen under flock
on LOCK_FILE.flock, so two runs cannot both win. Prints {"changed": bool, "holder": {...}}.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

SAME_KEYS = ("controller", "pid")


def read_holder_failed() -> dict[str, object]:
    """An unreadable lock names no live holder: it is taken over."""
    return {"controller": "?", "pid": -1, "started": "unreadable lock file"}


def read_holder(path: Path) -> dict[str, object] | None:
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return read_holder_failed()
    return holder if isinstance(holder, dict) else read_holder_failed()


def same(left: dict[str, object] | None, right: dict[str, object] | None) -> bool:
    return left is not None and right is not None and all(left.get(k) == right.get(k) for k in SAME_KEYS)


def write_atomically(path: Path, holder: dict[str, object]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(holder) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    usage_ok = len(argv) in (3, 5) and argv[0] in ("acquire", "release")
    if len(argv) == 5 and argv[3] != "--stale":
        usage_ok = False
    if not usage_ok:
        print(__doc__, file=sys.stderr)
        return 2
    action, path, me = argv[0], Path(argv[1]), json.loads(argv[2])
    stale = json.loads(argv[4]) if len(argv) == 5 else None
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".flock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        holder = read_holder(path)
        if action == "release":
            if same(holder, me):
                path.unlink()
                print(json.dumps({"changed": True, "holder": None}))
            else:
                print(json.dumps({"changed": False, "holder": holder}))
            return 0
        if same(holder, me):
            print(json.dumps({"changed": False, "holder": holder}))
            return 0
        if holder is None or same(holder, stale):
            write_atomically(path, me)
            print(json.dumps({"changed": True, "holder": me, "took_over": holder}))
            return 0
        print(json.dumps({"changed": False, "holder": holder}))
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
