"""The intake service as the runtime sees it."""

from __future__ import annotations

from collections.abc import Sequence

from intake.api import router
from intake.consumers import consumers
from intake.models import metadata
from intake.numbering import CaseNumbers
from shared.core.settings import Settings
from shared.messaging.store import ServiceStore
from shared.service.spec import ServiceSpec


def resources(store: ServiceStore, _settings: Settings) -> Sequence[object]:
    """Intake's own machinery, one of each per process: the case-number blocks."""
    return (CaseNumbers(store),)


SPEC = ServiceSpec(
    name="intake",
    title="citycase intake",
    metadata=metadata,
    router=router,
    consumers=consumers,
    resources=resources,
)
