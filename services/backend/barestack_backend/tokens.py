"""Managing the API's bearer tokens: ``python -m barestack_backend.tokens <command>``.

    create NAME [--act-for-users]   make a token; it is printed once, only its hash is stored
    list                            name, flags, created, revoked, last used (never a hash)
    revoke NAME                     refused within BARESTACK_TOKEN_CACHE_SECONDS (the name stays taken)
    import [--check]                make the tokens named in a JSON list on stdin match it

``import`` reads ``[{"name": "frontend", "token": "...", "act_for_users": true}, ...]`` and, for
those names only, inserts missing tokens, updates a changed token or flag and un-revokes; other
tokens are never touched. It prints one JSON line ``{"changed": ..., "created": [...],
"updated": [...]}``; with ``--check`` it changes nothing and reports what it would do.

Reads DATABASE_URL from the environment (the backend's env file). Exit status: 0 done,
2 bad usage or input (bad name, duplicate, unknown name, malformed JSON), 1 database trouble.
"""

import argparse
import hmac
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
from barestack_common import env
from psycopg2.extras import RealDictCursor

from barestack_backend.auth import TOKEN_NAME, hash_token, new_token, well_formed_token
from barestack_backend.db import Database, report_cli_error
from barestack_backend.settings import POSTGRES_SCHEMES

# Imported tokens come from elsewhere (a secrets store); the hash is only safe for long random ones.
MIN_IMPORTED_TOKEN_CHARS = 32


class UsageError(Exception):
    """Bad input: exit status 2, with this message."""


def _valid_name(name: str) -> str:
    if TOKEN_NAME.fullmatch(name) is None:
        raise UsageError(f"bad token name {name!r}: 1-63 of a-z 0-9 _ . -, starting with a letter or digit")
    return name


def create(cur: RealDictCursor, name: str, act_for_users: bool) -> str:
    _valid_name(name)
    token = new_token()
    cur.execute(
        "INSERT INTO barestack.api_tokens (name, token_hash, act_for_users) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (name, hash_token(token), act_for_users),
    )
    if cur.rowcount != 1:
        raise UsageError(f"a token named {name!r} exists already (revoked ones too); pick another name")
    return token


def list_tokens(cur: RealDictCursor) -> list[dict[str, Any]]:
    cur.execute(
        "SELECT name, act_for_users, created_at, revoked_at, last_used_at FROM barestack.api_tokens "
        "ORDER BY name"
    )
    return [dict(row) for row in cur.fetchall()]


def revoke(cur: RealDictCursor, name: str) -> bool:
    """True when revoked now, False when it was revoked already."""
    _valid_name(name)
    cur.execute("SELECT revoked_at FROM barestack.api_tokens WHERE name = %s FOR UPDATE", (name,))
    row = cur.fetchone()
    if row is None:
        raise UsageError(f"no token named {name!r}")
    if row["revoked_at"] is not None:
        return False
    cur.execute("UPDATE barestack.api_tokens SET revoked_at = now() WHERE name = %s", (name,))
    return True


@dataclass(frozen=True)
class Wanted:
    name: str
    token_hash: str
    act_for_users: bool


def parse_import(text: str) -> list[Wanted]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise UsageError(f"stdin is not valid JSON: {error}") from None
    if not isinstance(document, list):
        raise UsageError('stdin must be a JSON list: [{"name": "n", "token": "t", "act_for_users": false}]')
    wanted: list[Wanted] = []
    for index, item in enumerate(document):
        where = f"entry {index}"
        if not isinstance(item, dict) or not {"name", "token"} <= set(item):
            raise UsageError(f'{where}: must be an object with "name" and "token"')
        unknown = sorted(set(item) - {"name", "token", "act_for_users"})
        if unknown:
            raise UsageError(f"{where}: unknown field(s): {', '.join(unknown)}")
        name, token, act_for_users = item["name"], item["token"], item.get("act_for_users")
        if not isinstance(name, str):
            raise UsageError(f'{where}: "name" must be a string')
        _valid_name(name)
        # The token itself is never echoed, not even in an error.
        if not isinstance(token, str) or not well_formed_token(token):
            raise UsageError(f"{where} ({name}): the token must be letters, digits and - _ . ~ + / =")
        if len(token) < MIN_IMPORTED_TOKEN_CHARS:
            raise UsageError(f"{where} ({name}): the token needs {MIN_IMPORTED_TOKEN_CHARS}+ characters")
        act_for_users = False if act_for_users is None else act_for_users  # absent or null: no
        if not isinstance(act_for_users, bool):
            raise UsageError(f'{where} ({name}): "act_for_users" must be true or false')
        if any(other.name == name for other in wanted):
            raise UsageError(f"{where}: the name {name!r} appears twice")
        wanted.append(Wanted(name, hash_token(token), act_for_users))
    if len({w.token_hash for w in wanted}) != len(wanted):
        raise UsageError("two entries have the same token; every token must be different")
    return wanted


# pg_advisory_xact_lock's key for token imports (any constant no other lock uses).
IMPORT_LOCK_KEY = 0x62737470  # "bstp"


def import_tokens(cur: RealDictCursor, wanted: Sequence[Wanted], check: bool) -> dict[str, Any]:
    # Imports run one at a time: every app host of a deployment seeds the same tokens at the same
    # moment, and SELECT ... FOR UPDATE locks no row that does not exist yet, so two first imports
    # both inserted and one failed on the unique index. The lock ends with the transaction.
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (IMPORT_LOCK_KEY,))
    created: list[Wanted] = []
    updated: list[Wanted] = []
    for item in wanted:
        cur.execute(
            "SELECT token_hash, act_for_users, revoked_at FROM barestack.api_tokens WHERE name = %s "
            "FOR UPDATE",
            (item.name,),
        )
        row = cur.fetchone()
        if row is None:
            created.append(item)
        elif (
            not hmac.compare_digest(row["token_hash"], item.token_hash)
            or row["act_for_users"] != item.act_for_users
            or row["revoked_at"] is not None
        ):
            updated.append(item)
    # A token already stored under another name would break the unique index (or, in check
    # mode, pass unnoticed): refuse it before writing anything, the same way in both modes.
    changing = created + updated
    if changing:
        cur.execute(
            "SELECT name FROM barestack.api_tokens WHERE token_hash = ANY(%s) AND NOT (name = ANY(%s))",
            ([w.token_hash for w in changing], [w.name for w in wanted]),
        )
        clash = cur.fetchone()
        if clash:
            raise UsageError(f"a token being imported is already the token named {clash['name']!r}")
    if not check:
        for item in created:
            cur.execute(
                "INSERT INTO barestack.api_tokens (name, token_hash, act_for_users) VALUES (%s, %s, %s)",
                (item.name, item.token_hash, item.act_for_users),
            )
        for item in updated:
            cur.execute(
                "UPDATE barestack.api_tokens SET token_hash = %s, act_for_users = %s, revoked_at = NULL "
                "WHERE name = %s",
                (item.token_hash, item.act_for_users, item.name),
            )
    return {
        "changed": bool(changing),
        "created": [w.name for w in created],
        "updated": [w.name for w in updated],
    }


def _stamp(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m barestack_backend.tokens", description="Manage the backend API's bearer tokens."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create_cmd = commands.add_parser("create", help="make a token and print it (once)")
    create_cmd.add_argument("name")
    create_cmd.add_argument(
        "--act-for-users", action="store_true", help="may name a person in the X-Barestack-User header"
    )
    commands.add_parser("list", help="show the tokens (never their hashes)")
    revoke_cmd = commands.add_parser("revoke", help="refuse a token from now on")
    revoke_cmd.add_argument("name")
    import_cmd = commands.add_parser("import", help="make the tokens in a JSON list on stdin match it")
    import_cmd.add_argument("--check", action="store_true", help="change nothing, report what would change")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 on bad usage
    try:
        database_url = env.url(os.environ, "DATABASE_URL", POSTGRES_SCHEMES, "the backend's env file sets it")
        wanted = parse_import(sys.stdin.read()) if args.command == "import" else []
        if args.command in ("create", "revoke"):
            _valid_name(args.name)
    except (UsageError, env.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    database = Database(database_url, application_name="barestack-tokens", max_connections=1)
    try:
        with database.cursor() as cur:
            if args.command == "create":
                token = create(cur, args.name, args.act_for_users)
            elif args.command == "list":
                rows = list_tokens(cur)
            elif args.command == "revoke":
                revoked_now = revoke(cur, args.name)
            else:
                report = import_tokens(cur, wanted, args.check)
                if args.check:
                    cur.connection.rollback()  # nothing was written; make sure nothing is
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except psycopg2.errors.UniqueViolation:
        # Another process stored the same name or token meanwhile; its DETAIL would show the hash.
        print("error: a token with that name or value was stored meanwhile; nothing changed", file=sys.stderr)
        return 2
    except psycopg2.Error as error:
        return report_cli_error(error, database_url)
    finally:
        database.close()

    if args.command == "create":
        print(token)
        print(f"token {args.name!r} created; it is shown only now, store it safely", file=sys.stderr)
    elif args.command == "list":
        print("NAME\tACT_FOR_USERS\tCREATED\tREVOKED\tLAST_USED")
        for row in rows:
            flag = "yes" if row["act_for_users"] else "no"
            print(
                f"{row['name']}\t{flag}\t{_stamp(row['created_at'])}\t{_stamp(row['revoked_at'])}"
                f"\t{_stamp(row['last_used_at'])}"
            )
    elif args.command == "revoke":
        print(f"token {args.name!r} {'revoked' if revoked_now else 'was revoked already'}")
    else:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(run())
