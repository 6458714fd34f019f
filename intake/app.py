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


SPEC = ServiceSpec(
    name="intake",
    title="citycase intake",
    metadata=metadata,
    router=router,
    consumers=consumers,
    workers=workers,
    resources=resources,
    mounts={open311.PREFIX: Mount(router=open311.router, install=open311.install)},
)
