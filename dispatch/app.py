"""The dispatch service as the runtime sees it."""

from __future__ import annotations

from dispatch.api import router
from dispatch.consumers import consumers
from dispatch.handlers import recompute_provisional_deadlines
from dispatch.models import metadata
from dispatch.timer import run_deadline_timer
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_on_official_years
from shared.service.spec import ServiceSpec, Worker


def workers(ctx: ServiceContext) -> list[Worker]:
    """The persisted deadline timer, and the recompute of provisional deadlines."""
    return [lambda: run_deadline_timer(ctx), lambda: recompute_on_official_years(ctx, recompute_provisional_deadlines)]


SPEC = ServiceSpec(
    name="dispatch", title="citycase dispatch", metadata=metadata, router=router, consumers=consumers, workers=workers
)
