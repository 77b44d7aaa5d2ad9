"""The bench's parts, each runnable alone: name -> function(session) -> PartResult.

"all" runs them in this order. The venvs part goes last because it deploys hundreds of generated
modules onto the machine the other parts measure with the default scenario's application.
"""

from collections.abc import Callable

from barestack_bench.parts import converge, deploy, nochange, requests, venvs
from barestack_bench.results import PartResult
from barestack_bench.session import Session

PARTS: dict[str, Callable[[Session], PartResult]] = {
    "converge": converge.run,
    "nochange": nochange.run,
    "requests": requests.run,
    "deploy": deploy.run,
    "venvs": venvs.run,
}
