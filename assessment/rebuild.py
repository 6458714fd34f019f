"""``python -m services assessment rebuild``: replay the case event log from its first record into
fresh counters — after a change to the indicator rules, or to recover from a damaged database.

The replay runs the stream's own code (the tracked consumer and ``Stream.apply``) from position 0,
so a rebuilt state is exactly what the live stream would have reached. A running assessment
instance notices that its positions went back to 0 at its next batch and catches up too; both
are fenced by the positions' row locks, so no record is applied twice.
"""

from __future__ import annotations

import logging
import time

from assessment.handlers import Stream
from assessment.models import metadata, positions
from assessment.stream import STREAM_CONSUMER, forget_everything
from shared.city.model import City
from shared.core.ids import new_id
from shared.core.settings import Settings
from shared.messaging.bus import Bus
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumer, TrackedConsumerSpec
from shared.service.spec import Replay

log = logging.getLogger(__name__)


async def rebuild(
    store: ServiceStore, bus: Bus, city: City, *, topic: str, dead_letter_topic: str, batch_size: int
) -> Replay:
    """Empty the stream's state, then apply the log from its start up to its end at the time of the call."""
    assert store.metadata is metadata
    await forget_everything(store)
    ends = {position: offset for position, offset in (await bus.end_offsets(topic)).items() if offset > 0}
    spec = TrackedConsumerSpec(STREAM_CONSUMER, [topic], Stream(city).apply)
    consumer = TrackedConsumer(spec, store, bus, positions, dead_letter_topic=dead_letter_topic, batch_size=batch_size)
    # A group of its own: the replay needs every partition, whoever else is reading them.
    subscription = await bus.subscribe(
        f"{STREAM_CONSUMER}.rebuild-{new_id().hex[-12:]}", [topic], start_at=consumer.stored_positions
    )
    started = time.perf_counter()
    applied = 0
    last_report = started
    try:
        while True:
            reached = await consumer.stored_positions(list(ends))
            if all(reached[position] >= end for position, end in ends.items()):
                break
            applied += await consumer.step(subscription, timeout_s=1.0)
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                log.info("replayed %d events (%.0f/s)", applied, applied / (last_report - started))
    finally:
        await subscription.close()
    return Replay(applied, time.perf_counter() - started)


async def rebuild_from_settings(store: ServiceStore, bus: Bus, city: City, settings: Settings) -> Replay:
    """``rebuild`` on the configured topics and batch size (the service's ``rebuild`` command)."""
    return await rebuild(
        store,
        bus,
        city,
        topic=settings.topic_case_events,
        dead_letter_topic=settings.topic_dead_letter,
        batch_size=settings.rebuild_batch_size,
    )
