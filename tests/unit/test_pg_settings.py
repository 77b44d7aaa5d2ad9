"""The postgresql role's pg_settings_pending filter: what its settings loop sends to the module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "roles" / "postgresql" / "filter_plugins" / "pg_settings.py"
spec = importlib.util.spec_from_file_location("pg_settings", PATH)
assert spec and spec.loader
pg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pg)


def rows(**values: str) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def test_only_settings_whose_text_differs_are_left() -> None:
    settings = {"port": "5432", "work_mem": "16MB", "shared_buffers": "1024MB"}
    current = rows(port="5432", work_mem="4MB", shared_buffers="1GB")
    # 1024MB and 1GB are the same to PostgreSQL: the module decides that one, not the filter.
    assert pg.pg_settings_pending(settings, current) == [
        {"key": "work_mem", "value": "16MB"},
        {"key": "shared_buffers", "value": "1024MB"},
    ]
    assert pg.pg_settings_pending({"port": "5432"}, current) == []


def test_booleans_compare_as_postgresql_spells_them() -> None:
    assert pg.pg_settings_pending({"ssl": True, "fsync": False}, rows(ssl="on", fsync="off")) == []
    assert pg.pg_settings_pending({"ssl": "True"}, rows(ssl="off")) == [{"key": "ssl", "value": "True"}]


def test_a_setting_the_server_does_not_know_goes_to_the_module() -> None:
    # current_setting(name, true) is NULL for an unknown name: the module then says what is wrong.
    assert pg.pg_settings_pending({"no_such": "1"}, [{"name": "no_such", "value": None}]) == [
        {"key": "no_such", "value": "1"}
    ]
