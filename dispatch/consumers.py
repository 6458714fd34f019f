"""The events the dispatch service reacts to."""

from __future__ import annotations

from shared.messaging.consumer import ConsumerSpec
from shared.settings import Settings


def consumers(_settings: Settings) -> list[ConsumerSpec]:
    """The dispatch service's consumer groups."""
    return []
