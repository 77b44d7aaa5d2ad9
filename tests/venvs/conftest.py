"""Fixtures for the venv manager's tests: real uv, real wheels, real venvs, nothing mocked.

The wheelhouse is the only step that uses the network (PyPI); it is built once and cached in
.cache/wheelhouse-test under a stamp keyed by every requirement set, so reruns are offline.
Venv builds then run offline with the uv binary unpacked from that wheelhouse, for the
machine's system python3, which is what the target host uses.
"""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from venvmgr_testkit import (
    TARGET_PYTHON,
    WHEELHOUSE_CACHE,
    Layout,
    copy_sample_modules,
    make_layout,
    run_manager,
    run_wheelhouse,
    wheelhouse_tree,
)


@pytest.fixture(scope="session")
def target_python_version() -> str:
    completed = subprocess.run(
        [TARGET_PYTHON, "-c", "import sys; print('{}.{}.{}'.format(*sys.version_info[:3]))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, target_python_version: str) -> Path:
    """Wheels for the target python (the network is used here only, and only on a cache miss)."""
    tree = wheelhouse_tree(tmp_path_factory.mktemp("wheelhouse-tree"))
    report, exit_code, stderr = run_wheelhouse(
        tree, WHEELHOUSE_CACHE, target_python_version, "--platform", "x86_64-manylinux_2_28"
    )
    assert exit_code == 0, f"wheelhouse failed: {json.dumps(report, indent=2)}\n{stderr}"
    return WHEELHOUSE_CACHE


@pytest.fixture(scope="session")
def uv_binary(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """The uv the host would use: unpacked from the wheelhouse, not the controller's."""
    dest = tmp_path_factory.mktemp("host-bin") / "uv"
    report, exit_code, stderr = run_manager("extract-uv", "--wheelhouse", wheelhouse, "--dest", dest)
    assert exit_code == 0, stderr
    assert report["changed"] is True
    return dest


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the session: like on a host, later builds hardlink from it."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def sample_layout(tmp_path: Path, wheelhouse: Path, uv_binary: Path, uv_cache: Path) -> Layout:
    """A fresh copy of the sample modules, not built yet."""
    services = copy_sample_modules(tmp_path / "services")
    return make_layout(tmp_path, services, wheelhouse, uv_binary, uv_cache)


@pytest.fixture(scope="session")
def built_samples(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, uv_binary: Path, uv_cache: Path
) -> tuple[Layout, dict[str, Any]]:
    """The sample modules built once per session, with the first build's report; tests only read it."""
    root = tmp_path_factory.mktemp("built-samples")
    layout = make_layout(root, copy_sample_modules(root / "services"), wheelhouse, uv_binary, uv_cache)
    report, exit_code, stderr = layout.build()
    assert exit_code == 0, f"{json.dumps(report, indent=2)}\n{stderr}"
    return layout, report


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A real PostgreSQL (highest version installed) with the backend's migrations applied (test kit)."""
    from svc_testkit import postgres
    from svc_testkit.migrations import apply_migrations

    missing = postgres.missing_binaries()
    if missing:
        pytest.skip(missing)
    server = postgres.PostgresServer.start()
    try:
        apply_migrations(server.url())
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    from svc_testkit import redis_server

    missing = redis_server.missing_binary()
    if missing:
        pytest.skip(missing)
    server = redis_server.RedisServer.start()
    try:
        yield server.url
    finally:
        server.stop()
