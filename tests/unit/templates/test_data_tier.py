from __future__ import annotations

import hashlib

from .render import render

PG = {
    "postgresql_database": "barestack",
    "postgresql_owner_role": "barestack_owner",
    "postgresql_app_role": "barestack_app",
}


def hba_lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


def test_pg_hba_single_host_allows_loopback_only() -> None:
    lines = hba_lines(render("postgresql", "pg_hba.conf.j2", postgresql_app_addresses=[], **PG))
    assert ["local", "all", "postgres", "peer"] in lines
    host_lines = [line for line in lines if line[0] == "host"]
    assert {line[3] for line in host_lines} == {"127.0.0.1/32", "::1/128"}
    # Only SCRAM over TCP, and no trust/md5/password anywhere.
    assert {line[-1] for line in host_lines} == {"scram-sha-256"}
    assert all(line[-1] in {"peer", "scram-sha-256"} for line in lines)


def test_pg_hba_split_hosts_allows_exactly_the_app_hosts_as_app_role() -> None:
    lines = hba_lines(
        render("postgresql", "pg_hba.conf.j2", postgresql_app_addresses=["10.0.0.7", "10.0.0.8"], **PG)
    )
    tcp = [line for line in lines if line[0].startswith("host")]
    remote = [line for line in tcp if not line[3].startswith(("127.", "::1"))]
    # Over TLS only: hostssl for exactly the app hosts, never a plain host line for them.
    assert remote == [
        ["hostssl", "barestack", "barestack_app", "10.0.0.7/32", "scram-sha-256"],
        ["hostssl", "barestack", "barestack_app", "10.0.0.8/32", "scram-sha-256"],
    ]


REDIS = {
    "redis_port": 6379,
    "redis_unixsocket": "/run/redis/redis-server.sock",
    "redis_unixsocket_perm": "770",
    "redis_loglevel": "notice",
    "redis_databases": 16,
    "redis_rdb_save": ["3600 1"],
    "redis_maxmemory_mb": 256,
    "redis_maxmemory_policy": "noeviction",
}


def conf_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_redis_single_host_binds_loopback_and_keeps_protected_mode() -> None:
    lines = conf_lines(
        render(
            "redis",
            "redis.conf.j2",
            redis_bind=["127.0.0.1", "-::1"],
            redis_app_addresses=[],
            redis_persistence="aof",
            **REDIS,
        )
    )
    assert "bind 127.0.0.1 -::1" in lines
    assert "protected-mode yes" in lines
    # One host: plain TCP on loopback, no TLS.
    assert "port 6379" in lines
    assert not [line for line in lines if line.startswith("tls-")]
    assert "appendonly yes" in lines
    assert "maxmemory 256mb" in lines


def test_redis_with_app_hosts_elsewhere_speaks_tls_only() -> None:
    lines = conf_lines(
        render(
            "redis",
            "redis.conf.j2",
            redis_bind=["127.0.0.1", "-::1", "10.0.0.4"],
            redis_app_addresses=["10.0.0.7"],
            redis_persistence="aof",
            redis_tls_dir="/etc/ssl/barestack",
            **REDIS,
        )
    )
    # No plain TCP port on any address: the port clients use is the TLS one.
    assert "port 0" in lines
    assert "tls-port 6379" in lines
    assert "port 6379" not in lines
    assert "tls-cert-file /etc/ssl/barestack/redis.crt" in lines
    assert "tls-key-file /etc/ssl/barestack/redis.key" in lines


def test_redis_rdb_and_no_cap() -> None:
    lines = conf_lines(
        render(
            "redis",
            "redis.conf.j2",
            redis_bind=["127.0.0.1"],
            redis_app_addresses=[],
            redis_persistence="rdb",
            **{**REDIS, "redis_maxmemory_mb": 0},
        )
    )
    assert "save 3600 1" in lines
    assert "appendonly no" in lines
    assert not [line for line in lines if line.startswith("maxmemory ")]


def test_redis_acl_disables_default_user_and_stores_only_hashes() -> None:
    text = render(
        "redis",
        "users.acl.j2",
        redis_admin_user="admin",
        redis_admin_password="admin-password-0123456789",
        redis_app_user="barestack",
        redis_app_password="app-password-0123456789",
        redis_app_acl="~* +@all -@dangerous",
        redis_worker_user="barestack-worker",
        redis_worker_password="worker-password-0123456789",
        redis_worker_acl="resetkeys ~barestack:runs ~barestack:worker:* resetchannels -@all +xreadgroup",
    )
    assert text.splitlines()[0].startswith("user default off")
    assert "app-password-0123456789" not in text
    assert "worker-password-0123456789" not in text
    assert "user barestack-worker on #" + hashlib.sha256(b"worker-password-0123456789").hexdigest() in text
    assert "#" + hashlib.sha256(b"app-password-0123456789").hexdigest() in text
