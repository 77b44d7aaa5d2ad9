"""The schema migrations: naming rules, applied in order once each, and the constraints they enforce."""

import re

import psycopg2
import pytest
from svc_testkit.migrations import MIGRATIONS_DIR, apply_migrations, migration_files
from svc_testkit.postgres import PostgresServer


def test_files_are_numbered_in_sequence_and_leave_transactions_to_the_deployment() -> None:
    files = migration_files()
    assert [version for version, _ in files] == [f"{n:04d}" for n in range(1, len(files) + 1)]
    for _, path in files:
        code = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))  # comments may mention anything
        for word in ("BEGIN", "COMMIT", "ROLLBACK", "schema_migrations"):
            assert not re.search(rf"\b{word}\b", code, re.IGNORECASE), f"{path.name} must not contain {word}"


def test_a_fresh_database_gets_every_migration_once(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("barestack_migrations_check")
    assert apply_migrations(url) == [version for version, _ in migration_files(MIGRATIONS_DIR)]
    assert apply_migrations(url) == []  # a second deployment applies nothing
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'barestack' AND tablename = 'runs' "
                "AND indexdef LIKE '%%(service, module, created_at DESC)%%'"
            )
            assert cur.fetchone(), "runs needs an index on (service, module, created_at DESC)"
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("column", "bad_value"),
    [("status", "exploded"), ("args", '{"not": "a list"}'), ("attempts", -1), ("service", "")],
)
def test_runs_rejects_invalid_rows(database_url: str, column: str, bad_value: object) -> None:
    values = {"id": "00000000-0000-4000-8000-000000000001", "service": "backend", "module": "a-001"}
    values[column] = bad_value
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
            insert = f"INSERT INTO barestack.runs ({columns}) VALUES ({placeholders})"
            cur.execute(insert, list(values.values()))
    finally:
        conn.rollback()
        conn.close()


@pytest.mark.parametrize(
    ("name", "token_hash"),
    [("Upper", "a" * 64), ("-dash", "a" * 64), ("x" * 64, "a" * 64), ("ok", "not-hex"), ("ok", "A" * 64)],
)
def test_api_tokens_rejects_invalid_rows(database_url: str, name: str, token_hash: str) -> None:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
            cur.execute(
                "INSERT INTO barestack.api_tokens (name, token_hash) VALUES (%s, %s)", (name, token_hash)
            )
    finally:
        conn.rollback()
        conn.close()


def test_token_lookup_and_run_quota_are_indexed(database_url: str) -> None:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'barestack' "
                "AND (indexdef LIKE '%%UNIQUE%%api_tokens%%(token_hash)%%' "
                "OR indexdef LIKE '%%runs%%(requested_by) WHERE%%')"
            )
            assert len(cur.fetchall()) == 2
    finally:
        conn.close()
