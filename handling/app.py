"""The handling service as the runtime sees it."""

from __future__ import annotations

from handling.api import router
from handling.consumers import consumers
from handling.models import metadata
from shared.service.spec import ServiceSpec

SPEC = ServiceSpec(name="handling", title="citycase handling", metadata=metadata, router=router, consumers=consumers)
