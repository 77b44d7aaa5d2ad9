"""The bench's parts, each runnable alone: name -> function(session) -> PartResult.

"all" runs them in this order. The venvs part goes after the others that use the machine because it
deploys hundreds of generated modules onto the machine they measure with the default scenario's
application. The wheelhouse part needs no machine (it builds on the controller only).
"""

from collections.abc import Callable

from barestack_bench.parts import converge, deploy, nochange, requests, venvs, wheelhouse
from barestack_bench.results import PartResult
from barestack_bench.session import Session

PARTS: dict[str, Callable[[Session], PartResult]] = {
    "converge": converge.run,
    "nochange": nochange.run,
    "requests": requests.run,
    "deploy": deploy.run,
    "venvs": venvs.run,
    "wheelhouse": wheelhouse.run,
}
