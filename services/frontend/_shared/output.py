"""How modules report: one JSON document on stdout, failures as one line on stderr."""

import json
import sys
from typing import Any, NoReturn

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def emit_json(document: Any) -> None:
    """Print one JSON document (sorted keys, so equal results print equal lines)."""
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")


def fail(message: str, exit_code: int = EXIT_FAILED) -> NoReturn:
    """End the module with a one-line reason on stderr and a non-zero exit code."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(exit_code)
