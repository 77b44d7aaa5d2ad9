"""What a module's ``app.py`` needs from barestack: its settings and one way to report.

Standard library only: it runs inside every module's venv, whatever packages that venv holds
(run_module.sh puts ``services/_lib`` on the module's PYTHONPATH beside its service folder).

- Settings: ``require_env`` / ``optional_env``, with an error that says where a setting comes from
  (``barestack_common.env``'s rule: the variable is named, its value never quoted).
- Output: one JSON document on stdout (``emit_json``); a failure is one line on stderr and an exit
  code (``fail``): ``EXIT_FAILED`` the work failed, ``EXIT_BAD_INPUT`` bad arguments or settings.
"""

import json
import os
import sys
from typing import Any, NoReturn

from barestack_common.env import ConfigError, optional, required

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

ENV_FILE_HINT = "it comes from /etc/barestack/barestack.env, which run_module.sh loads"

# A module catches this name; it is the services' ConfigError, so one rule serves both.
MissingSettingError = ConfigError


def require_env(name: str) -> str:
    """The setting's value; missing or blank ends in ``MissingSettingError`` naming it."""
    return required(os.environ, name, ENV_FILE_HINT)


def optional_env(name: str, default: str) -> str:
    return optional(os.environ, name, default)


def emit_json(document: Any) -> None:
    """Print one JSON document (sorted keys, so equal results print equal lines)."""
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")


def fail(message: str, exit_code: int = EXIT_FAILED) -> NoReturn:
    """End the module with a one-line reason on stderr and a non-zero exit code."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(exit_code)
