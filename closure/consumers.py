"""The events the closure service reacts to."""

from __future__ import annotations

from shared.messaging.consumer import ConsumerSpec
from shared.settings import Settings


def consumers(_settings: Settings) -> list[ConsumerSpec]:
    """The closure service's consumer groups."""
    return []
