"""Ansible's linear strategy run over Mitogen (the ``mitogen`` package, requirements/controller.txt).

Mitogen keeps one Python interpreter per host for the whole run and sends it each task's module,
instead of an SSH command that unpacks and starts a new Python per task: a no-change converge is
hundreds of tasks, and their round trips were most of its time (docs/ARCHITECTURE.md, "Converge
speed: tasks over Mitogen, facts once"). Ansible finds strategies by directory. This file is the
one the package ships in its own plugins/strategy/, which ansible.cfg cannot name portably (the
path holds the venv's Python version), so the project's plugin directory carries it.
"""

import ansible_mitogen.loaders
import ansible_mitogen.strategy

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
