"""The closure service as the runtime sees it."""

from __future__ import annotations

from closure.api import router
from closure.consumers import consumers
from closure.handlers import recompute_provisional_deadlines
from closure.models import metadata
from closure.timer import run_check_timer
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_on_official_years
from shared.service.spec import ServiceSpec, Worker


def workers(ctx: ServiceContext) -> list[Worker]:
    """The persisted check timer, and the recompute of provisional check deadlines."""
    return [lambda: run_check_timer(ctx), lambda: recompute_on_official_years(ctx, recompute_provisional_deadlines)]


SPEC = ServiceSpec(
    name="closure", title="citycase closure", metadata=metadata, router=router, consumers=consumers, workers=workers
)
