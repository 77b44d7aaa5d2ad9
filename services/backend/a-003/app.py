"""Reports what the barestack database holds: every table with its exact row count, and runs by status.

Usage: python app.py    (DATABASE_URL from the environment)
An operator tool: runs started through the API get no stack credentials, so run it by hand as root
with the backend's env file: BARESTACK_ENV_FILE=/etc/barestack/backend.env run_module.sh backend/a-003
Prints {"database": ..., "tables": {"schema.table": rows, ...}, "runs": {"total": n,
"by_status": {...}} or null when barestack.runs does not exist yet}; exits 1 if PostgreSQL
cannot be reached. The URL (with its password) is never printed.
"""

import sys
from typing import Any

import psycopg2
from barestack_common.module import EXIT_BAD_INPUT, MissingSettingError, emit_json, fail, require_env
from psycopg2 import sql

USER_TABLES = """
    SELECT table_schema, table_name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
    ORDER BY table_schema, table_name
"""


def table_row_counts(cursor: Any) -> dict[str, int]:
    cursor.execute(USER_TABLES)
    counts: dict[str, int] = {}
    for schema, table in cursor.fetchall():
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        )
        counts[f"{schema}.{table}"] = cursor.fetchone()[0]
    return counts


def runs_by_status(cursor: Any) -> dict[str, int]:
    cursor.execute("SELECT status, count(*) FROM barestack.runs GROUP BY status ORDER BY status")
    return {status: count for status, count in cursor.fetchall()}


def main() -> int:
    try:
        database_url = require_env("DATABASE_URL")
    except MissingSettingError as error:
        fail(str(error), EXIT_BAD_INPUT)
    try:
        connection = psycopg2.connect(database_url, connect_timeout=5, application_name="barestack a-003")
    except psycopg2.OperationalError as error:
        # psycopg2's message names host and port, never the password.
        fail(f"cannot connect to PostgreSQL: {str(error).strip()}")
    try:
        with connection, connection.cursor() as cursor:
            counts = table_row_counts(cursor)
            runs = None
            if "barestack.runs" in counts:
                by_status = runs_by_status(cursor)
                runs = {"total": counts["barestack.runs"], "by_status": by_status}
            emit_json({"database": connection.info.dbname, "tables": counts, "runs": runs})
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
