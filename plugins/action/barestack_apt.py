"""``barestack_apt``: ``ansible.builtin.apt`` that asks dpkg first whether there is anything to do.

Every role installs its packages with apt, and a run where all of them are in place still paid
0.7-1.1 s per apt task (a no-change ``site.yml`` on a test machine: eight of them, about 6 s of
42): the module loads apt's whole cache before it can say "already installed", and with
``update_cache`` and ``cache_valid_time`` it first fetches the package lists again whenever they
are older than that, which is every run a day after the last one. dpkg's own status database
answers the only question a no-change run asks ("is each of these packages installed?") in one
short command.

So for ``state: present`` (the default) and plain package names, this plugin reads their status
with ``dpkg-query`` and returns ok when every one is installed. In every other case (a package
missing or half installed, a version or a wildcard in a name, another state, no names) it runs
``ansible.builtin.apt`` with the task's arguments unchanged: installs, check mode, diff and errors
are apt's own. Written as an action plugin (not a module) because it is exactly that: a cheap read,
then, only when needed, the maintained module.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

# A package name as Debian allows it (policy 5.6.1), optionally with an architecture; anything
# else (pkg=1.0, pkg*, a .deb path) is left to apt.
PLAIN_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")


def package_names(name: Any) -> list[str]:
    """The task's ``name`` as a list, as apt reads it (a list, or a comma-separated string)."""
    if name is None:
        return []
    if isinstance(name, str):
        return [part.strip() for part in name.split(",") if part.strip()]
    return [str(part) for part in name]


def all_installed(status_lines: list[str], names: list[str]) -> bool:
    """dpkg-query printed one ``${db:Status-Abbrev}`` per package: the second letter is the state,
    ``i`` for installed (``ii``, or ``hi`` when held)."""
    return len(status_lines) == len(names) and all(line[1:2] == "i" for line in status_lines)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        names = package_names(args.get("name", args.get("pkg", args.get("package"))))
        simple = (
            args.get("state", "present") == "present"
            and names
            and all(PLAIN_NAME.match(name) for name in names)
            and not args.get("deb")
            and not args.get("upgrade")
        )
        if simple:
            # One line per name, in the order asked; an unknown package makes dpkg-query exit 1.
            command = " ".join(
                ["dpkg-query", "--show", "--showformat='${db:Status-Abbrev}\\n'", "--"]
                + [shlex.quote(name) for name in names]
            )
            read = self._low_level_execute_command(command)
            if read.get("rc") == 0 and all_installed(read.get("stdout", "").splitlines(), names):
                result.update(changed=False, msg="already installed: " + ", ".join(names))
                return result
        module_result = self._execute_module(
            module_name="ansible.builtin.apt", module_args=args, task_vars=task_vars
        )
        return merge_hash(result, module_result)
