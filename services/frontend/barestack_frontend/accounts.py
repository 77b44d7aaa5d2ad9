"""Keep the accounts file in step with a list of users: ``python -m barestack_frontend.accounts``.

::

    echo '[{"name": "alice", "password": "...", "operator": true}]' |
        python -m barestack_frontend.accounts sync [--check] [--group GROUP] /etc/barestack/accounts.json

After ``sync`` the file holds exactly the users read on stdin. A user whose password still
verifies against the stored hash keeps the hash, so a re-run changes nothing (scrypt salts differ
on every hash); a changed operator flag alone is an update that keeps the hash too, and so the
user's sessions (a changed password ends them). The file is written atomically (temporary
file in the same directory, then rename) with mode 0640, owner root (when run as root) and group
GROUP (default: the existing file's group, else the caller's), so the services' group can read it.

Prints one JSON line: ``{"changed": bool, "added": [...], "updated": [...], "removed": [...]}``
(names only, never a password or hash). ``--check`` prints what would change and writes nothing.
Exit status: 0 done, 2 bad input (named by index and user name, never the password), 1 the file
cannot be read or written.
"""

import argparse
import contextlib
import grp
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from barestack_common.auth import (
    MIN_PASSWORD_LENGTH,
    USERNAME,
    Account,
    AccountsError,
    accounts_document,
    hash_password,
    parse_accounts,
)
from werkzeug.security import check_password_hash

FILE_MODE = 0o640
ENTRY_KEYS = frozenset({"name", "password", "operator"})


class BadInput(Exception):
    """The list on stdin (or an argument) is not acceptable; the message names what, never a password."""


class FileProblem(Exception):
    """The accounts file or its directory cannot be read or written."""


@dataclass(frozen=True)
class Wanted:
    name: str
    password: str = field(repr=False)
    operator: bool


@dataclass
class Plan:
    accounts: dict[str, Account]
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def parse_wanted(text: str) -> list[Wanted]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise BadInput(f"stdin is not JSON ({error.__class__.__name__})") from None
    if not isinstance(document, list):
        raise BadInput('stdin must be a JSON list of {"name", "password", "operator"} objects')
    wanted: list[Wanted] = []
    seen: set[str] = set()
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            raise BadInput(f"entry {index}: must be an object")
        name = entry.get("name")
        label = f"entry {index}" + (f" ({name!r})" if isinstance(name, str) and len(name) <= 64 else "")
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise BadInput(f"{label}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        if not isinstance(name, str) or not USERNAME.fullmatch(name):
            raise BadInput(f"{label}: name must match [a-z_][a-z0-9_.-]{{0,31}}")
        if name in seen:
            raise BadInput(f"{label}: user {name!r} is listed twice")
        seen.add(name)
        password = entry.get("password")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
            raise BadInput(f"{label}: password must be a string of at least {MIN_PASSWORD_LENGTH} characters")
        operator = entry.get("operator", False)
        if not isinstance(operator, bool):
            raise BadInput(f"{label}: operator must be true or false")
        wanted.append(Wanted(name, password, operator))
    return wanted


def read_existing(path: Path) -> dict[str, Account]:
    """The file's accounts; a missing file is empty, a broken one is replaced (and said so on stderr)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise FileProblem(f"{path}: cannot read it ({error.strerror})") from None
    try:
        return parse_accounts(json.loads(text))
    except (ValueError, AccountsError) as error:
        reason = str(error) if isinstance(error, AccountsError) else "not JSON"
        print(f"accounts: {path} is not a valid accounts file ({reason}); rewriting it", file=sys.stderr)
        return {}


def plan(existing: dict[str, Account], wanted: list[Wanted]) -> Plan:
    result = Plan(accounts={})
    for user in wanted:
        old = existing.get(user.name)
        if old is not None and check_password_hash(old.password_hash, user.password):
            # Same password: the hash stays (and so do the user's sessions); only the flag may change.
            result.accounts[user.name] = Account(user.name, old.password_hash, user.operator)
            if old.operator != user.operator:
                result.updated.append(user.name)
            continue
        result.accounts[user.name] = Account(user.name, hash_password(user.password), user.operator)
        (result.updated if old is not None else result.added).append(user.name)
    result.removed = sorted(set(existing) - set(result.accounts))
    return result


def group_id(group: str | None, path: Path) -> int:
    if group is not None:
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise BadInput(f"--group: there is no group {group!r}") from None
    try:
        return path.stat().st_gid
    except OSError:
        return os.getegid()


def needs_permissions(path: Path, gid: int) -> bool:
    try:
        info = path.stat()
    except FileNotFoundError:
        return False  # written fresh anyway
    owner_ok = os.geteuid() != 0 or info.st_uid == 0
    return stat.S_IMODE(info.st_mode) != FILE_MODE or info.st_gid != gid or not owner_ok


def write_atomically(path: Path, document: dict[str, Any], gid: int) -> None:
    directory = path.parent
    if not directory.is_dir():
        raise FileProblem(f"{directory}: no such directory")
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        # Mode and owner are set before any hash is written: the file is never readable by others.
        os.fchmod(fd, FILE_MODE)
        os.fchown(fd, 0 if os.geteuid() == 0 else -1, gid)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp_name, path)
    except OSError as error:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise FileProblem(f"{path}: cannot write it ({error.strerror})") from None
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def fix_permissions(path: Path, gid: int) -> None:
    try:
        os.chmod(path, FILE_MODE)
        os.chown(path, 0 if os.geteuid() == 0 else -1, gid)
    except OSError as error:
        raise FileProblem(f"{path}: cannot set its mode or group ({error.strerror})") from None


def sync(path: Path, stdin_text: str, group: str | None, check: bool) -> dict[str, Any]:
    wanted = parse_wanted(stdin_text)
    gid = group_id(group, path)
    existing = read_existing(path)
    result = plan(existing, wanted)
    content_changes = bool(result.added or result.updated or result.removed) or not path.exists()
    permission_changes = not content_changes and needs_permissions(path, gid)
    if not check:
        if content_changes:
            write_atomically(path, accounts_document(result.accounts), gid)
        elif permission_changes:
            fix_permissions(path, gid)
    return {
        "changed": content_changes or permission_changes,
        "added": sorted(result.added),
        "updated": sorted(result.updated),
        "removed": result.removed,
    }


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m barestack_frontend.accounts", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="make FILE hold exactly the users read (JSON) on stdin")
    sync_parser.add_argument("--check", action="store_true", help="say what would change, change nothing")
    sync_parser.add_argument("--group", help="group owning the file (mode 0640), e.g. the services' group")
    sync_parser.add_argument("file", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    try:
        try:
            stdin_text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("stdin is not UTF-8 text") from None
        outcome = sync(args.file, stdin_text, args.group, args.check)
    except BadInput as error:
        print(f"accounts: {error}", file=sys.stderr)
        return 2
    except FileProblem as error:
        print(f"accounts: {error}", file=sys.stderr)
        return 1
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
