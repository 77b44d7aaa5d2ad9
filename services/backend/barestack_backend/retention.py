"""Deleting old runs: ``python -m barestack_backend.retention --days N`` (a systemd timer runs it).

Deletes every run created more than N days ago that is not running: finished ones, and ones
that stayed queued that long (their worker is long gone). Prints how many it deleted. Works in
batches so that no transaction holds locks for long on a big table. Reads DATABASE_URL from the
environment. Exit status: 0 done, 2 bad N or settings, 1 database trouble.
"""

import argparse
import os
import sys
from collections.abc import Sequence

import psycopg2
from barestack_common import env

from barestack_backend import run_queries
from barestack_backend.db import Database, report_cli_error
from barestack_backend.settings import POSTGRES_SCHEMES

BATCH = 5000
MAX_DAYS = 36500


def _days(raw: str) -> int:
    # ASCII digits only: int() would also take " 7", "+7", "7_0" and non-ASCII digits.
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number of days from 1 to {MAX_DAYS}, got {raw!r}")
    return int(raw)


def delete_old_runs(database: Database, days: int, batch: int = BATCH) -> int:
    deleted = 0
    while True:
        with database.cursor() as cur:  # one transaction per batch
            count = run_queries.delete_older_than(cur, days, batch)
        deleted += count
        if count < batch:
            return deleted


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m barestack_backend.retention", description="Delete runs older than N days."
    )
    parser.add_argument(
        "--days", type=_days, required=True, help="delete runs created more than this many days ago"
    )
    args = parser.parse_args(argv)  # exits 2 on a bad or missing --days
    try:
        database_url = env.url(os.environ, "DATABASE_URL", POSTGRES_SCHEMES, "the backend's env file sets it")
    except env.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    database = Database(database_url, application_name="barestack-retention", max_connections=1)
    try:
        deleted = delete_old_runs(database, args.days)
    except psycopg2.Error as error:
        return report_cli_error(error, database_url)
    finally:
        database.close()
    print(f"deleted {deleted} runs older than {args.days} days")
    return 0


if __name__ == "__main__":
    sys.exit(run())
