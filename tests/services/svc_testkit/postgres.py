"""A throwaway PostgreSQL cluster from Debian's binaries, on a free loopback port.

The binaries are the highest major version installed under /usr/lib/postgresql (Debian's layout):
15 on a Debian 12 controller, 17 on Debian 13, as the ``postgresql`` package brings.

PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres`` system user and
lives in a private directory under /tmp (pytest's own tmp dirs are not reachable for that user).
The application role logs in over TCP with scram-sha-256, as in production.
"""

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from svc_testkit.ports import free_port

PG_LIB = Path("/usr/lib/postgresql")
BINARIES = ("initdb", "pg_ctl", "postgres")
SYSTEM_USER = "postgres"


def find_bin_dir(lib: Path = PG_LIB) -> Path | None:
    """``<lib>/<major>/bin`` of the highest major version that has every binary the kit runs."""
    versions = [d for d in lib.iterdir() if d.name.isdigit()] if lib.is_dir() else []
    for version in sorted(versions, key=lambda d: int(d.name), reverse=True):
        if all((version / "bin" / binary).is_file() for binary in BINARIES):
            return version / "bin"
    return None


PG_BIN = find_bin_dir()


def missing_binaries() -> str | None:
    if PG_BIN is None:
        found = ", ".join(BINARIES)
        return f"no PostgreSQL server binaries ({found}) in {PG_LIB}/*/bin (apt-get install postgresql)"
    if shutil.which("runuser") is None:
        return "runuser not found (util-linux)"
    return None


def bin_dir() -> Path:
    if PG_BIN is None:
        raise RuntimeError(missing_binaries())
    return PG_BIN


def _as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", SYSTEM_USER, "--", *command], check=True, capture_output=True, text=True)


@dataclass
class PostgresServer:
    base: Path
    port: int
    app_user: str
    app_password: str
    database: str

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def url(self, database: str | None = None) -> str:
        credentials = f"{self.app_user}:{self.app_password}"
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{database or self.database}"

    def admin_connection(self, database: str = "postgres") -> "psycopg2.extensions.connection":
        """Superuser over the private unix socket (trust auth: only root and postgres can reach it)."""
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=SYSTEM_USER, dbname=database)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        conn = self.admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(self.app_user)
                    )
                )
        finally:
            conn.close()
        return self.url(name)

    @classmethod
    def start(cls) -> "PostgresServer":
        base = Path(tempfile.mkdtemp(prefix="barestack-pg-"))
        (base / "socket").mkdir()
        shutil.chown(base, SYSTEM_USER, SYSTEM_USER)
        shutil.chown(base / "socket", SYSTEM_USER, SYSTEM_USER)
        os.chmod(base, 0o700)
        server = cls(base, free_port(), "barestack_app", secrets.token_urlsafe(18), "barestack")
        _as_postgres(
            str(bin_dir() / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            SYSTEM_USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        server.resume()
        conn = server.admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(server.app_user)),
                    (server.app_password,),
                )
        finally:
            conn.close()
        server.create_database(server.database)
        return server

    def resume(self) -> None:
        """Start the cluster (again, after ``halt``) and wait until it accepts connections."""
        options = " ".join(
            [
                f"-c port={self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                # Durability is pointless for a throwaway cluster; speed is not.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        _as_postgres(
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.base / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def halt(self) -> None:
        """Stop the server as an outage would (sessions ended), keeping its data for ``resume``."""
        _as_postgres(str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            _as_postgres(str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
