"""``python -m services assessment rebuild``: replay the case event log from its first record into
fresh counters — after a change to the indicator rules, or to recover from a damaged database.

The replay runs the stream's own code (the tracked consumer and ``Stream.apply``) from position 0,
so a rebuilt state is exactly what the live stream would have reached. A running assessment
instance notices that its positions went back to 0 at its next batch and catches up too; both
are fenced by the positions' row locks, so no record is applied twice.

A replay is prepared once (``prepare``: the state emptied, the log's end noted, a consumer group
named) and run by one member or several (``replay``, each in its own process): the members split
the partitions as the group assigns them, and every one stops when every partition has reached
the end, whoever applied it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from assessment.handlers import Stream
from assessment.models import metadata, positions
from assessment.stream import STREAM_CONSUMER, forget_everything
from shared.city.model import City
from shared.core.ids import new_id
from shared.messaging.bus import Bus
from shared.messaging.bus.base import TopicPartition
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumer, TrackedConsumerSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    """What a replay of the case event log into the stream's state did."""

    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """The replay's throughput."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ReplayPlan:
    """A prepared replay: the consumer group its members join, and where each partition of the log
    ended when the state was emptied (the replay stops there; later records are the live stream's).
    """

    group: str
    topic: str
    ends: dict[TopicPartition, int]


@dataclass(frozen=True)
class MemberReplay:
    """What one member of a replay did: the events it applied, from when it joined to when it saw
    every partition at its end (wall-clock seconds, so members in several processes line up)."""

    events: int
    started: float
    finished: float


async def prepare(store: ServiceStore, bus: Bus, *, topic: str) -> ReplayPlan:
    """Empty the stream's state and note the log's end: the replay's members have everything to apply."""
    assert store.metadata is metadata
    await forget_everything(store)
    ends = {position: offset for position, offset in (await bus.end_offsets(topic)).items() if offset > 0}
    # A group of its own: the replay needs every partition, whoever else is reading them.
    return ReplayPlan(f"{STREAM_CONSUMER}.rebuild-{new_id().hex[-12:]}", topic, ends)


async def replay(
    store: ServiceStore, bus: Bus, city: City, plan: ReplayPlan, *, dead_letter_topic: str, batch_size: int
) -> MemberReplay:
    """Join the plan's group and apply what it assigns until every partition has reached its end.

    The events counted are those of this member's committed batches: a batch another member
    applied first (a rebalance handed the partition over) is skipped by the positions' row lock
    and counted there only.
    """
    assert store.metadata is metadata
    spec = TrackedConsumerSpec(STREAM_CONSUMER, [plan.topic], Stream(city).apply)
    consumer = TrackedConsumer(spec, store, bus, positions, dead_letter_topic=dead_letter_topic, batch_size=batch_size)
    subscription = await bus.subscribe(plan.group, [plan.topic], start_at=consumer.stored_positions)
    started = time.time()
    applied = 0
    last_report = started
    try:
        while True:
            reached = await consumer.stored_positions(list(plan.ends))
            if all(reached[position] >= end for position, end in plan.ends.items()):
                break
            applied += await consumer.step(subscription, timeout_s=1.0)
            if time.time() - last_report > 10:
                last_report = time.time()
                log.info("replayed %d events (%.0f/s)", applied, applied / (last_report - started))
    finally:
        await subscription.close()
    return MemberReplay(applied, started, time.time())


def combined(members: list[MemberReplay]) -> Replay:
    """The replay its members did together: their events, from the first one joining to the last one done."""
    return Replay(
        sum(member.events for member in members),
        max(member.finished for member in members) - min(member.started for member in members),
    )


async def rebuild(
    store: ServiceStore, bus: Bus, city: City, *, topic: str, dead_letter_topic: str, batch_size: int
) -> Replay:
    """Empty the stream's state, then apply the log from its start up to its end at the time of the call."""
    plan = await prepare(store, bus, topic=topic)
    member = await replay(store, bus, city, plan, dead_letter_topic=dead_letter_topic, batch_size=batch_size)
    return combined([member])
