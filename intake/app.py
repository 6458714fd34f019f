"""The intake service as the runtime sees it."""

from __future__ import annotations

from intake.api import router
from intake.consumers import consumers
from intake.models import metadata
from shared.service.spec import ServiceSpec

SPEC = ServiceSpec(name="intake", title="citycase intake", metadata=metadata, router=router, consumers=consumers)
