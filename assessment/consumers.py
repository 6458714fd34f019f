"""The events the assessment service reacts to."""

from __future__ import annotations

from shared.context import ServiceContext
from shared.messaging.consumer import ConsumerSpec


def consumers(_ctx: ServiceContext) -> list[ConsumerSpec]:
    """The assessment service's consumer groups."""
    return []
