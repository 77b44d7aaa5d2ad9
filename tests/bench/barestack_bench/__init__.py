"""barestack's benchmarks: converge, no-change re-run, venvs at scale, request path, deploy under load.

Run with ``make bench [PART=...]`` (or ``python -m barestack_bench`` with tests/bench on PYTHONPATH).
Every figure is the median (with min and max) of several runs on real test machines, and every
comparison is against a baseline measured in the same run. bench/README.md explains each figure.
"""
