"""The assessment service as the runtime sees it."""

from __future__ import annotations

from assessment.api import router
from assessment.consumers import tracked_consumers
from assessment.models import metadata
from shared.service.spec import ServiceSpec

DESCRIPTION = """\
The city's figures (综合评价), live: the indicators of DOMAIN.md (effective filing rate, on-time closure rate,
closure rate, return and rework rates, satisfaction…) for the city, each district, street, community, cell,
department, inspector, category and source, per day, week, month or any range; rankings, a map of any indicator,
the monthly bulletin (月度通报, also as an Excel workbook) and a live feed (Server-Sent Events).

Every answer is read from counters that a stream keeps from the case event log, never from cases, so a read
costs the same whatever the city's history; `python -m services reconcile` recounts them from the other services
to check them.

Called by the console's dashboard, workbenches and bulletin, and by leaders' and integrators' reports. Every
route needs a bearer token from `POST /auth/token` (OAuth2 password flow, at the root of the process, not under
this prefix), and admits only the roles it names; a refused token is 401, a role not admitted 403. The command
center reads every scope; a department or an inspector its own figures and the rankings; the stream's positions
and the counters' export are a shift lead's.
"""

SPEC = ServiceSpec(
    name="assessment",
    title="citycase assessment",
    description=DESCRIPTION,
    metadata=metadata,
    router=router,
    tracked_consumers=tracked_consumers,
)
