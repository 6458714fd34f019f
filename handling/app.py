"""The handling service as the runtime sees it."""

from __future__ import annotations

from handling.api import router
from handling.consumers import consumers
from handling.models import metadata
from shared.service.spec import ServiceSpec

DESCRIPTION = """\
The departments' side of a case (任务处理, 处理反馈): each department's inbox of the cases dispatched to it, nearest
deadline first.

A department signs for a case (签收), returns one that is not its own with the reason (回退), asks for more time
until a date (申请延期), and reports it handled with photos (处置反馈), which asks closure for a check on site.

Called by the departments' workbenches (street offices, sanitation, utilities, the companies that own manholes);
departments with systems of their own also hear of their cases through intake's deliveries. Every route needs a
bearer token from `POST /auth/token` (OAuth2 password flow, at the root of the process, not under this prefix),
and admits only the roles it names; a refused token is 401, a role not admitted 403. A department sees and acts
on its own cases only; the export for the batch recount is a shift lead's.
"""

SPEC = ServiceSpec(
    name="handling",
    title="citycase handling",
    description=DESCRIPTION,
    metadata=metadata,
    router=router,
    consumers=consumers,
)
