from __future__ import annotations

import importlib.util
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "roles" / "postgresql" / "filter_plugins" / "pg_memory.py"
spec = importlib.util.spec_from_file_location("pg_memory", PATH)
assert spec and spec.loader
pg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pg)


def test_clamp_bounds_and_steps() -> None:
    assert pg.pg_memory_clamp(24000 * 0.25, 128, 8192, 128) == 5888
    assert pg.pg_memory_clamp(100, 128, 8192, 128) == 128
    assert pg.pg_memory_clamp(100000, 128, 8192, 128) == 8192
    assert pg.pg_memory_clamp(3.7, 4, 64) == 4


def test_settings_are_written_as_show_prints_them() -> None:
    assert pg.pg_memory_setting(1024) == "1GB"
    assert pg.pg_memory_setting("2048") == "2GB"
    assert pg.pg_memory_setting(1536) == "1536MB"
    assert pg.pg_memory_setting(64) == "64MB"
    assert pg.pg_memory_setting(1024 * 1024) == "1TB"
    assert pg.pg_memory_setting(0) == "0MB"
