"""barestack venv manager: one virtualenv per module, built offline from a wheelhouse with uv.

One module per job, in the order a ``build`` call uses them:

- ``cli``: argument parsing, the three commands, the JSON report on stdout and the exit code;
- ``discovery``: the services tree's venvs and their requirement files, and the bad-input error;
- ``plan``: the venv hash, what to create/update/keep/remove, venv_mapping.json;
- ``build``: the host side, uv building each distinct requirement set once, copies for the
  venvs sharing it, swapping them in, and ``extract-uv``;
- ``report``: the build's JSON report and its --diff summary;
- ``wheelhouse``: the controller side, resolving and downloading the wheels for a target.

The build side runs on the target host with the system python3 before any venv exists,
so everything ``build`` and ``extract-uv`` import must stay stdlib-only and Python 3.11
compatible; only ``wheelhouse`` (the controller) uses ``packaging``.
"""
