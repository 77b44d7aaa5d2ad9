"""Make the test-machine tool importable: it lives in tests/machines and is run by path, not installed."""

import sys
from pathlib import Path

TOOL_DIR = Path(__file__).resolve().parents[2] / "machines"
if str(TOOL_DIR) not in sys.path:
    sys.path.insert(0, str(TOOL_DIR))
