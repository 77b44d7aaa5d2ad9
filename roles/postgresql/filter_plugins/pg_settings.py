"""The settings whose running value is not yet the one the role asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _spelled_as_the_module_does(value: Any) -> str:
    # postgresql_alter_system's own spelling of booleans (True -> on) before its comparison.
    return {"True": "on", "False": "off"}.get(str(value), str(value))


def pg_settings_pending(
    settings: Mapping[str, Any], current: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``settings`` as dict2items would list them, less those whose current text (rows of name
    and value, as SHOW gives them) is already the asked one. A setting whose text differs goes to
    the module, which compares after normalising units ("1024MB" equals "1GB"): this only spares
    it the cases it would report ok, so a no-change run loops over nothing."""
    running = {row["name"]: row["value"] for row in current}
    return [
        {"key": key, "value": value}
        for key, value in settings.items()
        if running.get(key) != _spelled_as_the_module_does(value)
    ]


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"pg_settings_pending": pg_settings_pending}
