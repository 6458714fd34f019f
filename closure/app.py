"""The closure service as the runtime sees it."""

from __future__ import annotations

from closure.api import router
from closure.consumers import consumers
from closure.models import metadata
from shared.service.spec import ServiceSpec

SPEC = ServiceSpec(name="closure", title="citycase closure", metadata=metadata, router=router, consumers=consumers)
