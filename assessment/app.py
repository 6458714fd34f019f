"""The assessment service as the runtime sees it."""

from __future__ import annotations

from assessment.api import router
from assessment.consumers import tracked_consumers
from assessment.models import metadata
from assessment.rebuild import rebuild_from_settings
from shared.service.spec import ServiceSpec

SPEC = ServiceSpec(
    name="assessment",
    title="citycase assessment",
    metadata=metadata,
    router=router,
    tracked_consumers=tracked_consumers,
    rebuild=rebuild_from_settings,
)
