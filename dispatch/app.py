"""The dispatch service as the runtime sees it."""

from __future__ import annotations

from dispatch.api import router
from dispatch.consumers import consumers
from dispatch.models import metadata
from dispatch.timer import run_deadline_timer
from shared.service.context import ServiceContext
from shared.service.spec import ServiceSpec, Worker


def workers(ctx: ServiceContext) -> list[Worker]:
    """The persisted deadline timer."""
    return [lambda: run_deadline_timer(ctx)]


SPEC = ServiceSpec(
    name="dispatch", title="citycase dispatch", metadata=metadata, router=router, consumers=consumers, workers=workers
)
