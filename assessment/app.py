"""The assessment service as the runtime sees it."""

from __future__ import annotations

from assessment.api import router
from assessment.consumers import tracked_consumers
from assessment.models import metadata
from services.spec import ServiceSpec

SPEC = ServiceSpec(
    name="assessment",
    title="citycase assessment",
    metadata=metadata,
    router=router,
    tracked_consumers=tracked_consumers,
)
