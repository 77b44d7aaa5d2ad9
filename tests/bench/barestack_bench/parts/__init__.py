"""The bench's parts, each runnable alone: name -> function(session) -> PartResult.

"all" runs them in this order. The venvs part goes after the others that use the machine because it
deploys hundreds of generated modules onto the machine they measure with the default scenario's
application. The wheelhouse part needs no machine (it builds on the controller only). The backup
part creates a machine of its own (bench-backup) and destroys it at its end.
"""

from collections.abc import Callable

from barestack_bench.parts import backup, converge, deploy, nochange, requests, venvs, wheelhouse
from barestack_bench.results import PartResult
from barestack_bench.session import Session

PARTS: dict[str, Callable[[Session], PartResult]] = {
    "converge": converge.run,
    "nochange": nochange.run,
    "requests": requests.run,
    "deploy": deploy.run,
    "venvs": venvs.run,
    "wheelhouse": wheelhouse.run,
    "backup": backup.run,
}
# What "all" (plain `make bench`) runs: the backup part only on request (PART=backup), since it
# loads a gigabyte and would take the whole run past its 30 minutes.
ALL_PARTS: tuple[str, ...] = tuple(name for name in PARTS if name != "backup")
