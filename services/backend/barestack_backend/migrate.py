"""The schema migrator: the one implementation the deployment and the tests both run.

Every ``NNNN_name.sql`` file of the migrations directory is applied once, in the order of its
name, each in a transaction of its own that also records it in ``<schema>.schema_migrations``:
a migration and its version row commit together or not at all. The version is the file's name
without ``.sql`` (``0002_create_runs``), the table is ``(version text PRIMARY KEY, applied_at
timestamptz NOT NULL DEFAULT now())``: what the PostgreSQL role has always written, so hosts
migrated before this module keep their history. Files already recorded are left alone; a run
with nothing pending changes nothing.

The statements run as ``--role`` (SET ROLE) when given, so that what they create belongs to the
owner role whoever connects (on a host: the ``postgres`` superuser over the local socket). Two
runs at once wait for each other (an advisory lock), never apply a file twice.

Only the standard library and psycopg2 are needed, so the deployment can run this file with the
host's python3 and Debian's python3-psycopg2, without the backend's virtualenv::

    python3 migrate.py --dir /path/to/migrations --schema barestack --role barestack_owner \\
        'dbname=barestack port=5432'

It prints one JSON line, ``{"applied": [...], "pending": [...]}``: the versions applied by this
run, and those still pending (with ``--check`` nothing is applied and every pending version is
listed). Exit status 0 on success, 1 when a migration fails (the line then also carries
``"failed"`` and ``"error"``, and that migration left nothing behind), 2 on bad arguments, a
badly named migration file or one that cannot be read. The connection string is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "migrations"
DEFAULT_SCHEMA = "barestack"
TABLE = "schema_migrations"
# Files the migrator considers (what the role's fileglob matched), and the name each must have.
CANDIDATE = re.compile(r"^[0-9].*\.sql$")
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(Exception):
    """A migration failed; nothing of it was committed."""

    def __init__(self, version: str, error: str, applied: list[str]) -> None:
        super().__init__(f"{version}: {error}")
        self.version = version
        self.error = error
        self.applied = applied


@dataclass(frozen=True)
class Migration:
    version: str  # the file name without .sql, as recorded in schema_migrations
    path: Path


@dataclass
class Result:
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def migration_files(directory: Path = DEFAULT_DIR) -> list[Migration]:
    """The migrations of ``directory`` in the order they apply; ValueError on a badly named one."""
    migrations = []
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if not CANDIDATE.match(path.name):
            continue
        if not FILE_NAME.match(path.name) or not path.is_file():
            raise ValueError(f"{path.name}: migration files must be named NNNN_lowercase_name.sql")
        migrations.append(Migration(path.name.removesuffix(".sql"), path))
    return migrations


def _check_identifier(kind: str, name: str) -> None:
    if not IDENTIFIER.match(name):
        raise ValueError(f"{kind} must match [a-z_][a-z0-9_]* (at most 63 characters)")


def migrate(
    dsn: str,
    directory: Path = DEFAULT_DIR,
    *,
    schema: str = DEFAULT_SCHEMA,
    role: str | None = None,
    check: bool = False,
) -> Result:
    """Apply the pending migrations of ``directory`` (none with ``check``); MigrationError on failure."""
    _check_identifier("schema", schema)
    if role is not None:
        _check_identifier("role", role)
    migrations = migration_files(directory)
    table = sql.Identifier(schema, TABLE)
    record = sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(table)
    result = Result()
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            if role is not None:
                cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            # Held until the connection closes: a second migrator waits here, then finds nothing pending.
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"{schema}.{TABLE}",))
            if check:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{TABLE}",))
                exists = cur.fetchone()[0]
            else:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                cur.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} "
                        "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(table)
                )
                exists = True
            applied: set[str] = set()
            if exists:
                cur.execute(sql.SQL("SELECT version FROM {}").format(table))
                applied = {row[0] for row in cur.fetchall()}
        pending = [m for m in migrations if m.version not in applied]
        if check:
            result.pending = [m.version for m in pending]
            return result
        for migration in pending:
            try:
                with conn, conn.cursor() as cur:  # one transaction per file, with its version row
                    cur.execute(migration.path.read_text(encoding="utf-8"))
                    cur.execute(record, (migration.version,))
            except psycopg2.Error as exc:
                message = (exc.pgerror or str(exc)).strip()
                raise MigrationError(migration.version, message, result.applied) from exc
            result.applied.append(migration.version)
    finally:
        conn.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Apply the backend's SQL migrations once each, in order.")
    parser.add_argument(
        "dsn",
        nargs="?",
        help="libpq connection string or URL (default: $DATABASE_URL); prefer peer authentication "
        "('dbname=barestack') to a password on the command line",
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the migrations directory")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="schema of the schema_migrations table")
    parser.add_argument("--role", help="run the migrations as this role (SET ROLE): what they create is its")
    parser.add_argument("--check", action="store_true", help="apply nothing; list what is pending")
    args = parser.parse_args(argv)
    dsn = args.dsn or os.environ.get("DATABASE_URL")
    if not dsn:
        parser.error("no connection string: pass one or set DATABASE_URL")
    try:
        result = migrate(dsn, args.dir, schema=args.schema, role=args.role, check=args.check)
    except (ValueError, OSError) as exc:  # a badly named file, an unreadable directory or file
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    except MigrationError as exc:
        print(json.dumps({"applied": exc.applied, "failed": exc.version, "error": exc.error}))
        return 1
    except psycopg2.Error as exc:  # could not connect, lock or read the version table
        print(json.dumps({"applied": [], "error": str(exc).strip()}))
        return 1
    print(json.dumps({"applied": result.applied, "pending": result.pending}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
