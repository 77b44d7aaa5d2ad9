"""Applying the backend's SQL migrations the way the deployment does.

Each ``NNNN_name.sql`` runs once, in order, inside its own transaction, and is recorded in
``barestack.schema_migrations`` (version = the file's numeric prefix). The deployment's role
creates the schema and that table itself; the migration files never do.
"""

import re
from pathlib import Path

import psycopg2

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "services" / "backend" / "migrations"
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(directory.iterdir()):
        match = FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files must be named NNNN_lowercase_name.sql")
        files.append((match.group(1), path))
    return files


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations; returns the versions applied now."""
    applied_now: list[str] = []
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE SCHEMA IF NOT EXISTS barestack")
            cur.execute(
                "CREATE TABLE IF NOT EXISTS barestack.schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for version, path in migration_files(directory):
            with conn, conn.cursor() as cur:  # one transaction per file
                cur.execute("SELECT 1 FROM barestack.schema_migrations WHERE version = %s", (version,))
                if cur.fetchone():
                    continue
                cur.execute(path.read_text(encoding="utf-8"))
                cur.execute("INSERT INTO barestack.schema_migrations (version) VALUES (%s)", (version,))
                applied_now.append(version)
    finally:
        conn.close()
    return applied_now
