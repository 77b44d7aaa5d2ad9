"""Render a role's template the way Ansible does, without a host (Trellis' tests/templates idea).

Ansible's own templar renders it (``svc_testkit/role_template.py``), so filters, ``trim_blocks``,
undefined variables and the role's filter_plugins behave as on a converge.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "roles"
if str(ROOT / "tests" / "services") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "services"))

from svc_testkit.role_template import render_role_template  # noqa: E402


def render(role: str, template: str, **variables: Any) -> str:
    return render_role_template(ROLES / role, template, variables)
