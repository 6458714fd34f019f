"""The dispatch service as the runtime sees it."""

from __future__ import annotations

from dispatch.api import router
from dispatch.consumers import consumers
from dispatch.models import metadata
from services.spec import ServiceSpec

SPEC = ServiceSpec(name="dispatch", title="citycase dispatch", metadata=metadata, router=router, consumers=consumers)
