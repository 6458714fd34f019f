"""The closure service as the runtime sees it."""

from __future__ import annotations

from closure.api import router
from closure.consumers import consumers
from closure.handlers import recompute_provisional_deadlines
from closure.models import metadata
from closure.timer import CHECK_TIMER, run_check_timer
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_on_official_years
from shared.service.spec import ServiceSpec, Worker


def workers(ctx: ServiceContext) -> list[Worker]:
    """The persisted check timer, and the recompute of provisional check deadlines."""
    return [lambda: run_check_timer(ctx), lambda: recompute_on_official_years(ctx, recompute_provisional_deadlines)]


DESCRIPTION = """\
Checks on site and closes (核查结案): once a department reports a case handled, the cell's grid inspector gets a
check task with its deadline; passed, the case closes and is judged on time or late; failed, it goes back to the
department for rework (返工). A shift lead voids a case (作废), and an unsatisfied callback from the hotline (回访)
may reopen a closed one where the city's rules say so.

Called by the inspectors' phone app (check tasks) and the shift lead's workbench (voiding). Every route needs a
bearer token from `POST /auth/token` (OAuth2 password flow, at the root of the process, not under this prefix),
and admits only the roles it names; a refused token is 401, a role not admitted 403. An inspector answers only
their own check tasks; command-center staff read any case.
"""

SPEC = ServiceSpec(
    name="closure",
    title="citycase closure",
    description=DESCRIPTION,
    metadata=metadata,
    router=router,
    consumers=consumers,
    workers=workers,
    timers=[CHECK_TIMER],
)
