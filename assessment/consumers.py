"""The events the assessment service reacts to: all of them, as one stream of counter deltas."""

from __future__ import annotations

from assessment.handlers import Stream
from assessment.stream import STREAM_CONSUMER
from shared.messaging.tracked import TrackedConsumerSpec
from shared.service.context import ServiceContext


def tracked_consumers(ctx: ServiceContext) -> list[TrackedConsumerSpec]:
    """The indicator stream: every case event, in batches, with its positions in the database."""
    return [TrackedConsumerSpec(STREAM_CONSUMER, [ctx.settings.topic_case_events], Stream(ctx.city).apply)]
