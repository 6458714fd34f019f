"""Consumers that keep their positions in their own database, committed in the same transaction
as the effects of the records before them.

Where the inbox consumer remembers every event id it applied, this one remembers, per partition,
the next offset to apply: a batch whose records lie below it was applied already (a redelivery,
or a member that lost the partition and still holds records); a batch that starts beyond it was
fetched from the wrong place (the state was rebuilt, say) and the member seeks back. The row lock
on the positions makes two members sharing partitions, or a stale one after a rebalance, unable
to apply a record twice. Copies of one event at two offsets (a relay that published twice) are the
handler's to absorb.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, select, text, tuple_

from shared.core.logs import working_on
from shared.core.metrics import EVENTS_CONSUMED, STREAM_LAST_APPLIED
from shared.events.catalogue import CATALOGUE, Catalogue, UnknownEventType
from shared.events.envelope import Event
from shared.messaging.binding import MalformedEvent, decode
from shared.messaging.bus import Bus, Record
from shared.messaging.bus.base import Subscription, TopicPartition
from shared.messaging.consumer import dead_letter, is_for, is_infrastructure_error, rejoin_forever
from shared.messaging.spans import EventSpans
from shared.messaging.store import ServiceStore, Transaction

log = logging.getLogger(__name__)

BatchHandler = Callable[[Transaction, Sequence[Event]], Awaitable[None]]

_MAX_BACKOFF_S = 5.0


@dataclass(frozen=True)
class TrackedConsumerSpec:
    """A consumer applying whole batches of events (every catalogue type) with its own positions."""

    name: str
    topics: Sequence[str]
    apply: BatchHandler


@dataclass(frozen=True)
class BatchOutcome:
    """What one committed batch did: the positions to report to the group, and where to seek."""

    positions: dict[TopicPartition, int]
    seeks: dict[TopicPartition, int]
    applied: int


class TrackedConsumer:
    """Runs one member of a tracked consumer until cancelled."""

    def __init__(
        self,
        spec: TrackedConsumerSpec,
        store: ServiceStore,
        bus: Bus,
        positions: Table,
        *,
        dead_letter_topic: str,
        batch_size: int = 500,
        retry_delay_s: float = 0.2,
        catalogue: Catalogue = CATALOGUE,
    ) -> None:
        self.spec = spec
        self.store = store
        self.bus = bus
        self.positions = positions
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.retry_delay_s = retry_delay_s
        self.catalogue = catalogue
        # Where this member just sought back to, per partition: if the very next batch there still
        # starts past it, the records are gone (retention) and the gap is accepted rather than
        # sought forever. Cleared by the next batch applied there.
        self._sought: dict[TopicPartition, int] = {}
        # How far this member applied each partition: when idle it compares with the stored
        # positions, so a state emptied under it (a rebuild) is replayed even where nothing new comes.
        self._reached: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        """Join the group and apply batches forever, rejoining after a lost connection."""
        with working_on(service=self.store.service):
            await rejoin_forever(self.spec.name, self._consume, self.retry_delay_s)

    async def _consume(self, joined: Callable[[], None]) -> None:
        self._sought.clear()
        self._reached.clear()
        subscription = await self.bus.subscribe(self.spec.name, self.spec.topics, start_at=self.stored_positions)
        joined()
        try:
            while True:
                await self.step(subscription)
        finally:
            await subscription.close()

    async def step(self, subscription: Subscription, timeout_s: float = 1.0) -> int:
        """Fetch and apply one batch; the number of events applied."""
        records = await subscription.fetch(self.batch_size, timeout_s=timeout_s)
        # A fetch answers with what one read of the log brought (for Kafka, a fetch's bytes per
        # partition): a consumer catching up fills its batch from what is already there, without
        # waiting, rather than apply a full batch and then a sliver of one.
        while records and len(records) < self.batch_size:
            more = await subscription.fetch(self.batch_size - len(records), timeout_s=0)
            if not more:
                break
            records.extend(more)
        if not records:
            await self._follow_rewinds(subscription)
            return 0
        outcome = await self.apply(records)
        for partition, offset in outcome.seeks.items():
            await subscription.seek(partition, offset)
        if outcome.positions:
            # Only a hint for lag monitoring: the positions that count are in the database.
            await subscription.commit(outcome.positions)
        return outcome.applied

    async def _follow_rewinds(self, subscription: Subscription) -> None:
        if not self._reached:
            return
        stored = await self.stored_positions(list(self._reached))
        for partition, reached in list(self._reached.items()):
            if stored[partition] < reached:
                log.info("consumer %s: %s/%d rewound to %d; replaying", self.spec.name, *partition, stored[partition])
                try:
                    await subscription.seek(partition, stored[partition])
                    self._reached[partition] = stored[partition]
                except Exception:  # the partition went to another member in a rebalance
                    del self._reached[partition]

    async def stored_positions(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The next offset to apply in each partition (0 where this consumer never applied any)."""
        async with self.store.transaction() as tx:
            rows = await tx.connection.execute(
                select(self.positions.c.topic, self.positions.c.partition, self.positions.c.next_offset).where(
                    self.positions.c.consumer == self.spec.name
                )
            )
            stored = {(topic, partition): offset for topic, partition, offset in rows}
        return {partition: stored.get(partition, 0) for partition in partitions}

    async def apply(self, records: Sequence[Record]) -> BatchOutcome:
        """Apply one batch durably, retrying while the database or the network is at fault."""
        delay = self.retry_delay_s
        while True:
            try:
                return await self._apply_once(records)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consumer %s could not commit a batch; retrying", self.spec.name, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)

    async def _apply_once(self, records: Sequence[Record]) -> BatchOutcome:
        by_partition: dict[TopicPartition, list[Record]] = defaultdict(list)
        for record in records:
            by_partition[(record.topic, record.partition)].append(record)
        outcomes: Counter[str] = Counter()
        seeks: dict[TopicPartition, int] = {}
        new_positions: dict[TopicPartition, int] = {}
        async with EventSpans(self.spec.name) as spans, self.store.transaction() as tx:
            if tx.on_postgresql:
                # The positions commit with the effects: a crash that loses the last commits
                # loses their positions too, and the batches are applied again. No fsync to wait for.
                await tx.connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            stored = await self._lock_positions(tx, sorted(by_partition))
            fresh: list[Record] = []
            for partition, batch in by_partition.items():
                next_offset = stored.get(partition, 0)
                batch = [record for record in batch if record.offset >= next_offset]
                outcomes["already_applied"] += len(by_partition[partition]) - len(batch)
                if not batch:
                    continue
                if batch[0].offset > next_offset and self._sought.get(partition) != next_offset:
                    seeks[partition] = next_offset
                    continue
                self._sought.pop(partition, None)
                fresh.extend(batch)
                new_positions[partition] = batch[-1].offset + 1
            events = self._decode(tx, fresh, outcomes)
            spans.start(tx, events)
            await self._apply_events(tx, events, outcomes, spans)
            await self._store_positions(tx, new_positions)
        self._sought.update(seeks)
        self._reached.update(new_positions)
        for outcome, count in outcomes.items():
            EVENTS_CONSUMED.labels(self.spec.name, outcome).inc(count)
        if fresh:
            # The log's time, not the event's: a simulated city's clock is not the scraper's.
            STREAM_LAST_APPLIED.labels(self.spec.name).set(max(record.timestamp_ms for record in fresh) / 1000)
        return BatchOutcome(new_positions, seeks, outcomes["applied"])

    def _decode(self, tx: Transaction, records: Sequence[Record], outcomes: Counter[str]) -> list[tuple[Record, Event]]:
        decoded: list[tuple[Record, Event]] = []
        for record in records:
            # A record redriven for this consumer is applied like any copy of an event at a second
            # offset: the handler absorbs it if the event took effect before.
            if not is_for(record, self.spec.name):
                outcomes["ignored"] += 1
                continue
            try:
                decoded.append((record, decode(record, self.catalogue)))
            except (MalformedEvent, UnknownEventType) as exc:
                self._dead_letter(tx, record, str(exc))
                outcomes["dead_lettered"] += 1
            except Exception as exc:  # any record a producer can write must not stop the partition
                self._dead_letter(tx, record, f"undecodable: {type(exc).__name__}: {exc}")
                outcomes["dead_lettered"] += 1
        return decoded

    async def _apply_events(
        self, tx: Transaction, decoded: list[tuple[Record, Event]], outcomes: Counter[str], spans: EventSpans
    ) -> None:
        """The whole batch at once; if it fails on an event, event by event so only that one is
        dead-lettered (the handler is deterministic: retrying the same event cannot help).
        """
        if not decoded:
            return
        try:
            async with tx.savepoint():
                await self.spec.apply(tx, [event for _, event in decoded])
            outcomes["applied"] += len(decoded)
            return
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            log.warning("consumer %s: a batch failed; applying its events one by one", self.spec.name)
        for record, event in decoded:
            try:
                with spans.handling(event):
                    async with tx.savepoint():
                        await self.spec.apply(tx, [event])
                outcomes["applied"] += 1
            except Exception as exc:
                if is_infrastructure_error(exc):
                    raise
                with spans.handling(event):
                    log.error("consumer %s: dead-lettering %s %s", self.spec.name, event.type, event.id, exc_info=True)
                self._dead_letter(tx, record, f"handler failed: {type(exc).__name__}: {exc}")
                outcomes["dead_lettered"] += 1

    def _dead_letter(self, tx: Transaction, record: Record, reason: str) -> None:
        dead_letter(tx, record, reason, consumer=self.spec.name, topic=self.dead_letter_topic)

    async def _lock_positions(self, tx: Transaction, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The stored positions of ``partitions``, locked until the transaction ends (in a fixed
        order, so members sharing partitions cannot deadlock).
        """
        if not partitions:
            return {}
        rows = [
            {"consumer": self.spec.name, "topic": topic, "partition": partition, "next_offset": 0}
            for topic, partition in partitions
        ]
        await tx.connection.execute(
            self.store.insert_ignoring_duplicates(self.positions, "consumer", "topic", "partition"), rows
        )
        table = self.positions
        query = (
            select(table.c.topic, table.c.partition, table.c.next_offset)
            .where(
                table.c.consumer == self.spec.name,
                tuple_(table.c.topic, table.c.partition).in_(list(partitions)),
            )
            .order_by(table.c.topic, table.c.partition)
        )
        if tx.on_postgresql:
            query = query.with_for_update()
        result = await tx.connection.execute(query)
        return {(topic, partition): offset for topic, partition, offset in result}

    async def _store_positions(self, tx: Transaction, positions: Mapping[TopicPartition, int]) -> None:
        table = self.positions
        for (topic, partition), offset in sorted(positions.items()):
            await tx.connection.execute(
                table.update()
                .where(table.c.consumer == self.spec.name, table.c.topic == topic, table.c.partition == partition)
                .values(next_offset=offset)
            )
