"""The dispatch service as the runtime sees it."""

from __future__ import annotations

from dispatch.api import router
from dispatch.consumers import consumers
from dispatch.handlers import recompute_provisional_deadlines
from dispatch.models import metadata
from dispatch.timer import DEADLINE_TIMER, run_deadline_timer
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_on_official_years
from shared.service.spec import ServiceSpec, Worker


def workers(ctx: ServiceContext) -> list[Worker]:
    """The persisted deadline timer, and the recompute of provisional deadlines."""
    return [lambda: run_deadline_timer(ctx), lambda: recompute_on_official_years(ctx, recompute_provisional_deadlines)]


DESCRIPTION = """\
Sends each filed case to the department that owns it (任务派遣) and keeps the time it has.

- The city's routing rules, by category and place, dispatch a case the moment it is filed and set its handling
  deadline in the city's working time.
- A case no rule owns (权属不清) and a case a department returned (回退) wait in the dispatcher's queue (`GET /queue`)
  for a dispatch by hand.
- The shift lead grants or refuses extensions (延期), suspends (挂账, the clock stops) and resumes cases, and sends
  supervision notices (督办); the deadline timer raises missed dispatch and handling deadlines.

Called by the dispatcher's and the shift lead's workbenches; the other services learn what it decided from its
events (`case.dispatched`, `case.extension_approved`, …). Every route needs a bearer token from
`POST /auth/token` (OAuth2 password flow, at the root of the process, not under this prefix), and admits only the
roles it names; a refused token is 401, a role not admitted 403. Operators, dispatchers and shift leads read the
queue and cases; dispatchers and shift leads dispatch; extensions, suspensions and supervision are the shift
lead's.
"""

SPEC = ServiceSpec(
    name="dispatch",
    title="citycase dispatch",
    description=DESCRIPTION,
    metadata=metadata,
    router=router,
    consumers=consumers,
    workers=workers,
    timers=[DEADLINE_TIMER],
)
