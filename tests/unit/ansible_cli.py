"""Running this checkout's ansible-playbook (and make) from a test, as an operator would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The command with the project's ansible.cfg and venv, no colour, and no vault password from
    the caller's environment (a test that wants one passes it); output captured, never raises."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
