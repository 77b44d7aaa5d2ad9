"""The test kit's PostgreSQL is the highest major version installed, whichever Debian the controller runs."""

from pathlib import Path

from svc_testkit import postgres
from svc_testkit.postgres import BINARIES, PostgresServer, find_bin_dir


def make_version(lib: Path, version: str, binaries: tuple[str, ...] = BINARIES) -> Path:
    bin_dir = lib / version / "bin"
    bin_dir.mkdir(parents=True)
    for binary in binaries:
        (bin_dir / binary).write_text("", encoding="utf-8")
    return bin_dir


def test_the_highest_complete_major_version_is_chosen(tmp_path: Path) -> None:
    assert find_bin_dir(tmp_path / "none") is None
    make_version(tmp_path, "9")
    assert find_bin_dir(tmp_path) == tmp_path / "9" / "bin"
    fifteen = make_version(tmp_path, "15")  # 15 > 9 as numbers, not as strings
    assert find_bin_dir(tmp_path) == fifteen
    make_version(tmp_path, "18", binaries=("pg_ctl",))  # only the client side: not a server
    (tmp_path / "17").mkdir()
    assert find_bin_dir(tmp_path) == fifteen
    assert find_bin_dir(tmp_path / "trixie") is None
    seventeen = make_version(tmp_path / "trixie", "17")
    assert find_bin_dir(tmp_path / "trixie") == seventeen


def test_the_running_server_is_the_version_found(pg_server: PostgresServer) -> None:
    servers = [d for d in postgres.PG_LIB.iterdir() if d.name.isdigit() and (d / "bin/postgres").is_file()]
    installed = sorted(int(d.name) for d in servers)
    conn = pg_server.admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version_num")
            major = int(cur.fetchone()[0]) // 10000
    finally:
        conn.close()
    assert major == installed[-1]
    assert postgres.bin_dir() == postgres.PG_LIB / str(major) / "bin"
