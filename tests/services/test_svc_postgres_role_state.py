"""The postgresql role's one reading of the database's state (roles/postgresql/files/database_state.sql).

A no-change run skips the database, schema and grant tasks when this reading says they are in
place, so it must never say so when one of them would change something. Each case below makes
one thing differ from what the role's tasks leave, with the statements their modules issue, on a
real server, and expects the reading to see it.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from psycopg2 import sql
from svc_testkit.postgres import PostgresServer

ROLE = Path(__file__).resolve().parents[2] / "roles/postgresql"
STATE_SQL = ROLE / "files/database_state.sql"
# The lists the role grants and the reading checks (plain comma-separated values, no templating).
ROLE_VARS = yaml.safe_load((ROLE / "vars/main.yml").read_text(encoding="utf-8"))
TABLE_PRIVILEGES = ROLE_VARS["postgresql_app_table_privileges"]
SEQUENCE_PRIVILEGES = ROLE_VARS["postgresql_app_sequence_privileges"]


class Layout:
    """A database laid out as the role lays it out: owner and app roles, the database, its schema."""

    def __init__(self, server: PostgresServer) -> None:
        suffix = secrets.token_hex(4)
        self.server = server
        self.owner, self.app, self.other = f"own_{suffix}", f"app_{suffix}", f"oth_{suffix}"
        self.database, self.schema = f"db_{suffix}", "app"
        admin = server.admin_connection()
        try:
            with admin.cursor() as cur:
                for role in (self.owner, self.app, self.other):
                    cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                        sql.Identifier(self.database), sql.Identifier(self.owner)
                    )
                )
        finally:
            admin.close()
        self.conn = server.admin_connection(self.database)

    def run(self, statement: str, *identifiers: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL(statement).format(*map(sql.Identifier, identifiers)))

    def state(self) -> dict[str, bool]:
        with self.conn.cursor() as cur:
            # As postgresql_query sends it: the file's text with named arguments.
            cur.execute(
                STATE_SQL.read_text(encoding="utf-8"),
                {
                    "owner": self.owner,
                    "app": self.app,
                    "schema": self.schema,
                    "table_privileges": TABLE_PRIVILEGES,
                    "sequence_privileges": SEQUENCE_PRIVILEGES,
                },
            )
            assert cur.description is not None
            names = [column.name for column in cur.description]
            row = cur.fetchone()
            assert row is not None
            return dict(zip(names, row, strict=True))

    def grant_as_the_role_does(self) -> None:
        """tasks/privileges.yml's grants, as postgresql_privs issues them."""
        self.run("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC", self.database)
        self.run("GRANT CONNECT ON DATABASE {} TO {}", self.database, self.app)
        self.run("GRANT USAGE ON SCHEMA {} TO {}", self.schema, self.app)
        self.run(f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {{}} TO {{}}", self.schema, self.app)
        self.run(
            f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {{}} TO {{}}", self.schema, self.app
        )
        for privileges, kind in ((TABLE_PRIVILEGES, "TABLES"), (SEQUENCE_PRIVILEGES, "SEQUENCES")):
            self.run(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {{}} IN SCHEMA {{}} GRANT {privileges} ON {kind} TO {{}}",
                self.owner,
                self.schema,
                self.app,
            )

    def close(self) -> None:
        self.conn.close()
        admin = self.server.admin_connection()
        try:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self.database)))
                cur.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY (%s)",
                    ([self.owner, self.app, self.other],),
                )
                for (role,) in cur.fetchall():
                    cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                    cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        finally:
            admin.close()


@pytest.fixture
def layout(pg_server: PostgresServer) -> Iterator[Layout]:
    made = Layout(pg_server)
    yield made
    made.close()


@pytest.fixture
def granted(layout: Layout) -> Layout:
    """The end state of the role's database tasks: schema made, every grant in place, two tables."""
    layout.run("CREATE SCHEMA {} AUTHORIZATION {}", layout.schema, layout.owner)
    layout.run("SET ROLE {}", layout.owner)
    layout.run("CREATE TABLE {}.runs (id bigserial PRIMARY KEY)", layout.schema)
    layout.run("RESET ROLE")
    layout.grant_as_the_role_does()
    assert layout.state() == {"database_ok": True, "schema_ok": True, "grants_ok": True}
    return layout


def test_nothing_is_in_place_on_a_database_without_the_schema(layout: Layout) -> None:
    assert layout.state() == {"database_ok": True, "schema_ok": False, "grants_ok": False}
    layout.run("CREATE SCHEMA {} AUTHORIZATION {}", layout.schema, layout.owner)
    assert layout.state() == {"database_ok": True, "schema_ok": True, "grants_ok": False}


def test_the_owners_are_read(granted: Layout) -> None:
    granted.run("ALTER SCHEMA {} OWNER TO {}", granted.schema, granted.other)
    assert granted.state()["schema_ok"] is False
    granted.run("ALTER SCHEMA {} OWNER TO {}", granted.schema, granted.owner)
    granted.run("ALTER DATABASE {} OWNER TO {}", granted.database, granted.other)
    assert granted.state()["database_ok"] is False


def test_a_missing_role_leaves_nothing_in_place(granted: Layout) -> None:
    granted.run("DROP OWNED BY {}", granted.app)
    granted.run("REVOKE CONNECT ON DATABASE {} FROM {}", granted.database, granted.app)
    granted.run("DROP ROLE {}", granted.app)
    assert granted.state() == {"database_ok": True, "schema_ok": True, "grants_ok": False}


@pytest.mark.parametrize(
    "change",
    [
        "GRANT TEMPORARY ON DATABASE {db} TO PUBLIC",
        "GRANT CONNECT ON DATABASE {db} TO PUBLIC",
        "REVOKE CONNECT ON DATABASE {db} FROM {app}",
        "REVOKE USAGE ON SCHEMA {schema} FROM {app}",
        "REVOKE DELETE ON {schema}.runs FROM {app}",
        "REVOKE USAGE ON SEQUENCE {schema}.runs_id_seq FROM {app}",
        "CREATE TABLE {schema}.made_by_the_superuser (id int)",  # not the owner's: no default grant
        "CREATE VIEW {schema}.made_by_the_superuser AS SELECT 1 AS one",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE UPDATE ON TABLES FROM {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE SELECT ON SEQUENCES FROM {app}",
    ],
)
def test_each_grant_the_role_makes_is_read(granted: Layout, change: str) -> None:
    names = {"db": granted.database, "app": granted.app, "schema": granted.schema, "owner": granted.owner}
    with granted.conn.cursor() as cur:
        cur.execute(sql.SQL(change).format(**{k: sql.Identifier(v) for k, v in names.items()}))
    assert granted.state() == {"database_ok": True, "schema_ok": True, "grants_ok": False}
    granted.grant_as_the_role_does()  # what the role's modules do then
    assert granted.state()["grants_ok"] is True


def test_what_the_owner_creates_later_keeps_the_grants_in_place(granted: Layout) -> None:
    granted.run("SET ROLE {}", granted.owner)
    granted.run("CREATE TABLE {}.later (id bigserial PRIMARY KEY)", granted.schema)
    granted.run("RESET ROLE")
    assert granted.state()["grants_ok"] is True
