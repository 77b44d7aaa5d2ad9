"""Make the bench package importable: it lives in tests/bench and is run as `python -m barestack_bench`."""

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

SAMPLES = Path(__file__).resolve().parent / "samples"
