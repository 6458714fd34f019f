"""The gauges a process reads every few seconds for the services it runs, apart from the loops they
describe: a relay that makes no progress still moves its outbox's backlog, a consumer that stopped
still shows its lag growing, a timer that stopped still shows its deadlines coming due.

- **Outbox**: parked rows, waiting rows and the oldest waiting one (``shared.messaging.parking``).
- **Consumer lag**, per consumer and partition: each topic's end offsets minus where the consumer
  stands: the group's committed offsets for an inbox consumer (it commits after each batch), the
  positions in ``consumer_positions`` for a tracked one (the stream), which are what count there.
- **Timers**: deadlines passed and not reported (``shared.service.timer``).

Every replica of a service reads the same database and the same groups, so each reports the
same values: a dashboard aggregates them with max. A part that cannot be read (the database or the
bus away) keeps its last values and is logged when it begins failing and when it works again;
readiness reports the dependency itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence

from sqlalchemy import select

from services.runtime.runtime import ServiceRuntime
from shared.core.metrics import CONSUMER_LAG
from shared.core.outage_logs import StateLog
from shared.messaging.bus import Bus
from shared.messaging.bus.base import TopicPartition
from shared.messaging.parking import refresh_outbox_gauges
from shared.messaging.tracked import TrackedConsumer
from shared.service.timer import refresh_timer_gauges

log = logging.getLogger(__name__)

_PART_TIMEOUT_S = 30.0


class Gauges:
    """Reads the gauges of ``services`` (on ``bus`` once it is connected)."""

    def __init__(self, services: Sequence[ServiceRuntime], bus: Bus, bus_connected: asyncio.Event) -> None:
        self.services = services
        self.bus = bus
        self.bus_connected = bus_connected
        self._health = {
            part: StateLog(log, f"reading the {part} gauges") for part in ("outbox", "timer", "consumer lag")
        }

    async def watch(self, every_s: float) -> None:
        """Refresh every ``every_s`` seconds until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(every_s)

    async def refresh(self) -> None:
        """Read every gauge once; a part that fails is logged (once per outage) and skipped."""
        await self._attempt("outbox", self._outboxes())
        await self._attempt("timer", self._timers())
        if self.bus_connected.is_set():
            await self._attempt("consumer lag", self._lags())

    async def _attempt(self, part: str, reading: Awaitable[None]) -> None:
        health = self._health[part]
        try:
            # Bounded: a broker or database that hangs must not hold the other parts' gauges still.
            async with asyncio.timeout(_PART_TIMEOUT_S):
                await reading
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            health.failed(exc)
        else:
            health.succeeded()

    async def _outboxes(self) -> None:
        for service in self.services:
            await refresh_outbox_gauges(service.store)

    async def _timers(self) -> None:
        for service in self.services:
            if service.spec.timers:
                await refresh_timer_gauges(service.store, service.spec.timers)

    async def _lags(self) -> None:
        ends: dict[TopicPartition, int] = {}
        for topic in sorted({topic for service in self.services for topic in _topics_read(service)}):
            ends |= await self.bus.end_offsets(topic)
        for service in self.services:
            for runner in service.consumers:
                committed = await self.bus.committed_offsets(runner.spec.name, runner.spec.topics)
                _set_lag(runner.spec.name, runner.spec.topics, ends, committed)
            for tracked in service.tracked_consumers:
                _set_lag(tracked.spec.name, tracked.spec.topics, ends, await stored_positions(tracked))


def _topics_read(service: ServiceRuntime) -> set[str]:
    specs = [runner.spec for runner in service.consumers] + [tracked.spec for tracked in service.tracked_consumers]
    return {topic for spec in specs for topic in spec.topics}


def _set_lag(
    consumer: str, topics: Sequence[str], ends: Mapping[TopicPartition, int], at: Mapping[TopicPartition, int]
) -> None:
    """A partition the consumer never committed is unread from its start: lagging by all of it."""
    for (topic, partition), end in ends.items():
        if topic in topics:
            CONSUMER_LAG.labels(consumer, topic, str(partition)).set(max(end - at.get((topic, partition), 0), 0))


async def stored_positions(tracked: TrackedConsumer) -> dict[TopicPartition, int]:
    """The next offset the tracked consumer applies in each partition it ever applied, read on a
    reading connection (no write transaction, which on SQLite would take the one writer's lock)."""
    table = tracked.positions
    query = select(table.c.topic, table.c.partition, table.c.next_offset).where(table.c.consumer == tracked.spec.name)
    async with tracked.store.engine.connect() as connection:
        return {(topic, partition): offset for topic, partition, offset in await connection.execute(query)}
