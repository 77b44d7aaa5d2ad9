"""barestack venv manager: one virtualenv per module, built offline from a wheelhouse with uv.

The build side runs on the target host with the system python3 before any venv exists,
so everything imported by ``build`` must stay stdlib-only and Python 3.11 compatible.
"""
