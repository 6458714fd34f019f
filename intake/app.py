"""The intake service as the runtime sees it."""

from __future__ import annotations

from collections.abc import Sequence

from intake.api import router
from intake.consumers import consumers
from intake.delivery import Sender
from intake.handlers import forget_contacts, recompute_provisional_deadlines
from intake.models import metadata
from intake.numbering import CaseNumbers
from intake.open311 import routes as open311
from shared.core.settings import Settings
from shared.messaging.store import ServiceStore
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_on_official_years
from shared.service.spec import Mount, ServiceSpec, Worker
from shared.service.timer import run_timer


def resources(store: ServiceStore, _settings: Settings) -> Sequence[object]:
    """Intake's own machinery, one of each per process: the case-number blocks."""
    return (CaseNumbers(store),)


def workers(ctx: ServiceContext) -> list[Worker]:
    """The recompute of provisional deadlines, the sender of what other systems are told, and the
    forgetting of citizens' contacts past their retention."""
    return [
        lambda: recompute_on_official_years(ctx, recompute_provisional_deadlines),
        lambda: Sender.of(ctx).run(),
        lambda: run_timer("contact retention", lambda: forget_contacts(ctx), ctx.settings.timer_interval_seconds),
    ]


DESCRIPTION = """\
Where every problem enters the city's books (信息收集, 案卷建立), and the case file (案卷) that follows each case to its
end.

- **Reports**: grid inspectors report what they find on patrol (filed at once, or handled on the spot, 自行处置);
  the 12345/12319 hotlines push citizens' work orders; citizens report in public; video analytics push
  detections. Hotline and public reports go to the cell's inspector to verify on site (核实); video detections
  wait for an operator, who files (立案) or rejects them (不予立案). A report of an open case's problem (same
  category, within 50 m and 72 hours) is merged into it.
- **The case file**: every case's status and its timeline (who, when, why), told by the events of every service;
  the command center's search.
- **Deliveries**: what the hotlines and the departments' own systems are told (receipts, status, the final
  reply), sent with retries; the dead ones for a shift lead to send again or discard.
- **Open311** GeoReport v2 for citizen apps is under `/open311`, with documentation of its own.

Called by the inspectors' phone app, the operator's workbench and the case search of the console, the hotlines'
and video systems. Every route needs a bearer token from `POST /auth/token` (OAuth2 password flow, at the root
of the process, not under this prefix), and admits only the roles it names; a refused token is 401, a role not
admitted 403. The hotlines' routes under `/hotline/{hotline_id}/` take a signature over the body with the
hotline's secret (Standard Webhooks) instead of a token, and `POST /public/reports` takes no caller at all
(rate-limited per address).
"""

SPEC = ServiceSpec(
    name="intake",
    title="citycase intake",
    description=DESCRIPTION,
    metadata=metadata,
    router=router,
    consumers=consumers,
    workers=workers,
    resources=resources,
    mounts={open311.PREFIX: Mount(router=open311.router, description=open311.DESCRIPTION, install=open311.install)},
)
