"""The schema migrations and their migrator (barestack_backend.migrate, what the deployment runs).

The migrator runs for real against the test kit's PostgreSQL: in order, once each, one transaction
per file, recorded in barestack.schema_migrations as the PostgreSQL role has always recorded them.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from svc_testkit.migrations import (
    MIGRATIONS_DIR,
    MIGRATOR_FILE,
    MigrationError,
    apply_migrations,
    migrate,
    migration_files,
)
from svc_testkit.postgres import SYSTEM_USER, PostgresServer

VERSIONS = [m.version for m in migration_files()]


def versions_recorded(url: str) -> list[str]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM barestack.schema_migrations ORDER BY applied_at, version")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def relation_exists(url: str, name: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def copy_migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


def test_files_are_numbered_in_sequence_and_leave_transactions_to_the_migrator() -> None:
    files = migration_files()
    assert [m.version[:4] for m in files] == [f"{n:04d}" for n in range(1, len(files) + 1)]
    for migration in files:
        code = re.sub(
            r"--[^\n]*", "", migration.path.read_text(encoding="utf-8")
        )  # comments may say anything
        for word in ("BEGIN", "COMMIT", "ROLLBACK", "schema_migrations"):
            assert not re.search(rf"\b{word}\b", code, re.IGNORECASE), (
                f"{migration.path.name} must not contain {word}"
            )


def test_a_badly_named_migration_is_refused_and_other_files_are_ignored(tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    (directory / "README.md").write_text("not a migration\n", encoding="utf-8")
    assert [m.version for m in migration_files(directory)] == VERSIONS
    (directory / "0009-Create-Things.sql").write_text("SELECT 1;\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"0009-Create-Things\.sql"):
        migration_files(directory)


def test_a_fresh_database_gets_every_migration_once(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("barestack_migrations_check")
    assert apply_migrations(url) == VERSIONS
    assert apply_migrations(url) == []  # a second deployment applies nothing
    # The version is the file name without .sql: what hosts migrated by the role already hold.
    assert versions_recorded(url) == VERSIONS
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


def test_as_on_a_host_the_superuser_migrates_as_the_owner_role(pg_server: PostgresServer) -> None:
    """postgres over the local socket with --role barestack_owner: everything created is the owner's."""
    pg_server.create_database("barestack_migrations_owner")
    owner = "barestack_owner_check"
    admin = pg_server.admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
            cur.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier("barestack_migrations_owner"), sql.Identifier(owner)
                )
            )
    finally:
        admin.close()
    socket = f"host={pg_server.socket_dir} port={pg_server.port}"
    dsn = f"{socket} user={SYSTEM_USER} dbname=barestack_migrations_owner"
    assert migrate(dsn, role=owner).applied == VERSIONS
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'barestack' AND c.relkind IN ('r', 'p')"
            )
            owners = dict(cur.fetchall())
            cur.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'barestack'")
            schema_owner = cur.fetchone()[0]
    finally:
        conn.close()
    assert {"schema_migrations", "runs", "api_tokens"} <= set(owners)
    assert set(owners.values()) == {owner}, owners
    assert schema_owner == owner
    with pytest.raises(ValueError, match="role must match"):
        migrate(dsn, role="owner; DROP TABLE x")


def test_a_database_migrated_by_the_old_role_tasks_keeps_its_history(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    """What roles/postgresql's former loop left: its table, each file plus its version row in one query."""
    url = pg_server.create_database("barestack_migrations_legacy")
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE SCHEMA barestack")
            cur.execute(
                "CREATE TABLE barestack.schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for migration in migration_files():
            with conn, conn.cursor() as cur:
                record = f"INSERT INTO barestack.schema_migrations (version) VALUES ('{migration.version}');"
                cur.execute(migration.path.read_text(encoding="utf-8") + f"\n;\n{record}")
    finally:
        conn.close()
    directory = copy_migrations(tmp_path)
    new_version = f"{len(VERSIONS) + 1:04d}_add_probe"
    (directory / f"{new_version}.sql").write_text(
        "CREATE TABLE barestack.probe (id integer PRIMARY KEY);\n", encoding="utf-8"
    )
    assert migrate(url, directory).applied == [new_version]  # only the new one, none reapplied
    assert versions_recorded(url) == [*VERSIONS, new_version]


def test_a_failing_migration_leaves_nothing_behind_and_stops_the_run(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    url = pg_server.create_database("barestack_migrations_failing")
    directory = copy_migrations(tmp_path)
    broken = f"{len(VERSIONS) + 1:04d}_broken"
    after = f"{len(VERSIONS) + 2:04d}_after"
    (directory / f"{broken}.sql").write_text(
        "CREATE TABLE barestack.half_done (id integer);\nSELECT no_such_function();\n", encoding="utf-8"
    )
    (directory / f"{after}.sql").write_text("CREATE TABLE barestack.after (id integer);\n", encoding="utf-8")
    with pytest.raises(MigrationError) as failure:
        migrate(url, directory)
    assert failure.value.version == broken
    assert "no_such_function" in failure.value.error
    assert failure.value.applied == VERSIONS
    assert versions_recorded(url) == VERSIONS
    assert not relation_exists(url, "barestack.half_done")  # its own transaction rolled back
    assert not relation_exists(url, "barestack.after")  # nothing after the failure ran
    # Fixed, the next deployment applies it and what follows.
    (directory / f"{broken}.sql").write_text(
        "CREATE TABLE barestack.half_done (id integer);\n", encoding="utf-8"
    )
    assert migrate(url, directory).applied == [broken, after]


def test_two_migrators_at_once_apply_each_file_once(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("barestack_migrations_race")
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        try:
            results.append(migrate(url).applied)
        except BaseException as exc:  # reported below, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(results, key=len) == [[], VERSIONS]
    assert versions_recorded(url) == VERSIONS


def test_the_command_line_runs_alone_and_reports_as_json(pg_server: PostgresServer, tmp_path: Path) -> None:
    """As the deployment runs it: the file on its own (-I: nothing from the repo), the URL from the env."""
    url = pg_server.create_database("barestack_migrations_cli")

    def run(*args: str) -> tuple[int, dict[str, object], str]:
        completed = subprocess.run(
            [sys.executable, "-I", str(MIGRATOR_FILE), *args],
            env={"PATH": os.environ["PATH"], "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = completed.stdout + completed.stderr
        assert pg_server.app_password not in output
        return completed.returncode, json.loads(completed.stdout or completed.stderr), output

    assert run("--check")[:2] == (0, {"applied": [], "pending": VERSIONS})
    assert not relation_exists(url, "barestack.schema_migrations")  # --check changes nothing
    assert run()[:2] == (0, {"applied": VERSIONS, "pending": []})
    assert run()[:2] == (0, {"applied": [], "pending": []})
    assert run("--check")[:2] == (0, {"applied": [], "pending": []})

    directory = copy_migrations(tmp_path)
    broken = f"{len(VERSIONS) + 1:04d}_broken"
    (directory / f"{broken}.sql").write_text("SELECT no_such_function();\n", encoding="utf-8")
    status, report, _ = run("--dir", str(directory))
    assert status == 1
    assert report["failed"] == broken and report["applied"] == []
    assert "no_such_function" in str(report["error"])
    (directory / "0099-Bad.sql").write_text("SELECT 1;\n", encoding="utf-8")
    status, report, _ = run("--dir", str(directory))
    assert status == 2 and "0099-Bad.sql" in str(report["error"])
    status, report, _ = run("--dir", str(tmp_path / "missing"))
    assert status == 2 and str(tmp_path / "missing") in str(report["error"])


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
