"""``python -m barestack_bench``: see cli.py."""

import sys

from barestack_bench.cli import main

sys.exit(main())
