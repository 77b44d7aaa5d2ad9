"""A role's template rendered by Ansible's own templar, the way the template action renders it.

The same engine as a converge (ansible-core's ``Templar``): its filters and tests
(``ansible.builtin.*``, ``to_nice_json``, ``regex_replace``...) and the role's own
``filter_plugins``, ``trim_blocks`` on, an undefined variable an error, the ``template_*`` variables
and ``ansible_managed`` as the action computes them (unless the caller sets ``ansible_managed``).
No host, no play: the caller passes the variables a converge would have.

Variables are data, as the action sees a task's variables after they were templated: a string
holding ``{{ ... }}`` is not evaluated again (Ansible trusts only templates it loaded itself).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import add_all_plugin_dirs
from ansible.template import Templar, generate_ansible_template_vars, trust_as_template

# The template action's defaults (trim_blocks: true, lstrip_blocks: false, newline_sequence: \n).
_OVERRIDES = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}


def render_role_template(role_dir: Path, template: str, variables: Mapping[str, Any]) -> str:
    """``<role_dir>/templates/<template>`` rendered with ``variables``."""
    role_dir = role_dir.resolve()
    source = role_dir / "templates" / template
    # As a play does when it loads the role: its filter_plugins (and other plugin dirs) become known.
    add_all_plugin_dirs(str(role_dir))
    loader = DataLoader()
    loader.set_basedir(str(role_dir))
    template_vars = generate_ansible_template_vars(path=template, fullpath=str(source))
    if "ansible_managed" in variables:
        del template_vars["ansible_managed"]
    templar = Templar(loader=loader, variables={**variables, **template_vars})
    # Includes and imports are searched where the action searches them.
    searchpath = [str(source.parent), str(role_dir / "templates"), str(role_dir)]
    result = templar.copy_with_new_env(searchpath=searchpath).template(
        trust_as_template(loader.get_text_file_contents(str(source))),
        escape_backslashes=False,
        overrides=_OVERRIDES,
    )
    return "" if result is None else str(result)
