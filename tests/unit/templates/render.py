"""Render a role's template the way Ansible does, without a host (Trellis' tests/templates idea)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import jinja2
from ansible.plugins.filter.core import FilterModule as CoreFilters
from ansible.plugins.filter.mathstuff import FilterModule as MathFilters
from ansible.plugins.filter.urls import FilterModule as UrlFilters

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"


def _role_filters(role: str) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for path in sorted((ROLES / role / "filter_plugins").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"{role}_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        filters.update(module.FilterModule().filters())
    return filters


def render(role: str, template: str, **variables: Any) -> str:
    # Ansible's own settings: trim_blocks on, undefined variables are errors.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLES / role / "templates"),
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(CoreFilters().filters())
    env.filters.update(UrlFilters().filters())
    env.filters.update(MathFilters().filters())
    env.filters.update(_role_filters(role))
    return env.get_template(template).render(ansible_managed="managed by barestack", **variables)
