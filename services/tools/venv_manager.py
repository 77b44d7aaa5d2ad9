#!/usr/bin/env python3
"""Build one virtualenv per module offline from a wheelhouse; see venvmgr/cli.py for the commands.

Run with the host's system python3 (stdlib only): ``python3 venv_manager.py build --help``.
"""

import sys
from pathlib import Path

# Explicit, so the package is found even under ``python3 -I`` (which drops the script's folder).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from venvmgr.cli import main

if __name__ == "__main__":
    sys.exit(main())
