"""Dead letters seen and sent again, on both backends: a consumer gives up on a record, a shift
lead lists it with the reason, fixes the cause and redrives it, and the consumer that failed
applies it exactly once while the other consumers pass it by.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Table

from shared.core.ids import new_id
from shared.events.catalogue import CATALOGUE, Catalogue
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.bus import Bus, Message, Record
from shared.messaging.bus.base import StartPositions, Subscription, TopicPartition
from shared.messaging.consumer import (
    DLQ_CONSUMER,
    DLQ_ORIGIN,
    DLQ_REASON,
    REDRIVE_FOR,
    REDRIVE_OF,
    ConsumerRunner,
    ConsumerSpec,
)
from shared.messaging.dead_letters import AlreadyRedriven, DeadLetters, UnknownDeadLetter
from shared.messaging.relay import OutboxRelay
from shared.messaging.store import ServiceStore, Transaction
from shared.messaging.tables import positions_table
from shared.messaging.tracked import TrackedConsumer, TrackedConsumerSpec
from tests.backends.helpers import (
    cancelled,
    consume,
    effect_count,
    effects_metadata,
    new_case_id,
    read_log,
    record_effect,
)
from tests.conftest import Backend


class Fragile:
    """A handler that fails on one event until the cause is fixed."""

    def __init__(self, effects: Table, poison: Event) -> None:
        self.record = record_effect(effects)
        self.poison = poison
        self.fixed = False

    async def __call__(self, tx: Transaction, event: Event) -> None:
        await self.record(tx, event)  # rolled back with the savepoint when it fails
        if event.id == self.poison.id and not self.fixed:
            raise ValueError("no route for this category")

    async def batch(self, tx: Transaction, events: Sequence[Event]) -> None:
        for event in events:
            await self(tx, event)


def runner(backend: Backend, name: str, store: ServiceStore, handler: Fragile) -> ConsumerRunner:
    return ConsumerRunner(
        ConsumerSpec(name, [backend.case_events], {"case.cancelled": handler}),
        store,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
        max_attempts=2,
        retry_delay_s=0.01,
    )


async def catch_up(backend: Backend, consumer: ConsumerRunner, until: int) -> list[Record]:
    """Let ``consumer`` apply the case-event log from its committed offsets until it has seen
    ``until`` records; publish the dead letters it wrote."""
    name = consumer.spec.name
    seen = await consume(backend.bus, consumer.apply, name, backend.case_events, lambda seen: len(seen) >= until)
    await OutboxRelay(consumer.store, backend.bus).relay_once()
    return seen


def pending_gauge(consumer: str) -> float | None:
    return REGISTRY.get_sample_value("citycase_dead_letters_pending", {"consumer": consumer})


async def test_a_failed_event_is_listed_with_its_reason_and_applied_once_when_redriven_after_the_fix(
    backend: Backend,
) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    poison, healthy = cancelled(new_case_id()), cancelled(new_case_id())
    handler = Fragile(effects, poison)
    consumer = runner(backend, "dispatch-test", dispatch, handler)
    await backend.bus.publish([encode(poison, backend.case_events), encode(healthy, backend.case_events)])
    await catch_up(backend, consumer, 2)

    dead_letters = DeadLetters(backend.bus, backend.dead_letter)
    (letter,) = await dead_letters.pending()
    assert letter.consumer == "dispatch-test"
    assert letter.reason == "handler failed 2 times: ValueError: no route for this category"
    assert (letter.event_type, letter.event_id, letter.subject) == ("case.cancelled", str(poison.id), poison.subject)
    assert letter.origin is not None
    assert letter.origin.topic == backend.case_events
    assert letter.redrive_of is None
    assert await dead_letters.pending("someone-else") == []
    assert pending_gauge("dispatch-test") == 1
    shown = await dead_letters.inspect(letter.id)
    assert shown.value == encode(poison, backend.case_events).value
    assert (DLQ_REASON, letter.reason.encode()) in shown.headers
    assert shown.redriven_at is None

    # Sent again before the fix: it fails again, and its new dead letter says where it came from.
    await dead_letters.redrive(letter.id)
    assert await dead_letters.pending() == []
    with pytest.raises(AlreadyRedriven):
        await dead_letters.redrive(letter.id)
    await catch_up(backend, consumer, 1)
    (again,) = await dead_letters.pending()
    assert again.redrive_of == letter.id
    assert again.reason == letter.reason
    assert await effect_count(dispatch, effects, poison.id) == 0

    handler.fixed = True
    await dead_letters.redrive(again.id)
    # A redrive interrupted between its record and its marker is sent twice: applied once still.
    log = await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 4)
    (redriven,) = [record for record in log if record.header(REDRIVE_OF) == str(again.id).encode()]
    assert redriven.header(REDRIVE_FOR) == b"dispatch-test"
    assert redriven.header(DLQ_REASON) is None
    assert redriven.key == poison.subject.encode()
    await backend.bus.publish([Message(backend.case_events, redriven.key, redriven.value, redriven.headers)])
    await catch_up(backend, consumer, 2)

    assert await effect_count(dispatch, effects, poison.id) == 1
    assert await effect_count(dispatch, effects, healthy.id) == 1
    assert await dead_letters.pending() == []
    assert pending_gauge("dispatch-test") == 0
    assert (await dead_letters.inspect(letter.id)).redriven_at is not None
    with pytest.raises(UnknownDeadLetter):
        await dead_letters.inspect(new_id())


async def test_two_dead_letters_of_one_event_are_applied_once(backend: Backend) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    event = cancelled(new_case_id())
    consumer = runner(backend, "dispatch-test", dispatch, Fragile(effects, cancelled(new_case_id())))
    # A consumer deployed before the event's type: the relay's two copies are two dead letters.
    consumer.catalogue = Catalogue()
    await backend.bus.publish([encode(event, backend.case_events)] * 2)
    await catch_up(backend, consumer, 2)
    dead_letters = DeadLetters(backend.bus, backend.dead_letter)
    assert [letter.event_id for letter in await dead_letters.pending()] == [str(event.id)] * 2

    consumer.catalogue = CATALOGUE
    assert len(await dead_letters.redrive_all()) == 2
    await catch_up(backend, consumer, 2)
    assert await effect_count(dispatch, effects, event.id) == 1
    assert await dead_letters.pending() == []


async def test_a_redrive_is_read_by_the_consumer_it_is_for_and_passed_by_by_the_others(backend: Backend) -> None:
    dispatch_metadata, dispatch_effects = effects_metadata()
    closure_metadata, closure_effects = effects_metadata()
    dispatch = await backend.store("dispatch", dispatch_metadata)
    closure = await backend.store("closure", closure_metadata)
    poison = cancelled(new_case_id())
    # Dispatch fails on the event, closure applies it; both give up on a record that is no event.
    dispatch_handler = Fragile(dispatch_effects, poison)
    dispatching = runner(backend, "dispatch-test", dispatch, dispatch_handler)
    closing = runner(backend, "closure-test", closure, Fragile(closure_effects, cancelled(new_case_id())))
    valid = encode(poison, backend.case_events)
    await backend.bus.publish([valid, Message(backend.case_events, b"case-1", b"\xff not json", valid.headers)])
    for consumer in (dispatching, closing):
        await catch_up(backend, consumer, 2)

    dead_letters = DeadLetters(backend.bus, backend.dead_letter)
    assert dead_letters.pending_counts() == {}  # nothing read yet: the counts are the last read's
    await dead_letters.refresh()
    assert dead_letters.pending_counts() == {"dispatch-test": 2, "closure-test": 1}
    dispatch_handler.fixed = True

    redriven = await dead_letters.redrive_all("dispatch-test")
    assert [letter.consumer for letter in redriven] == ["dispatch-test", "dispatch-test"]
    for consumer in (dispatching, closing):
        await catch_up(backend, consumer, 2)

    assert await effect_count(dispatch, dispatch_effects, poison.id) == 1
    assert await effect_count(closure, closure_effects, poison.id) == 1
    # The record that is no event fails dispatch again; closure neither applied nor dead-lettered it.
    (still_broken,) = await dead_letters.pending("dispatch-test")
    assert still_broken.redrive_of in {letter.id for letter in redriven}
    assert "not a JSON object" in still_broken.reason
    assert [letter.consumer for letter in await dead_letters.pending("closure-test")] == ["closure-test"]


async def test_the_tracked_consumer_applies_a_redrive_for_it_and_passes_by_the_others(backend: Backend) -> None:
    metadata, effects = effects_metadata()
    positions = positions_table(metadata)
    store = await backend.store("assessment", metadata)
    poison, healthy = cancelled(new_case_id()), cancelled(new_case_id())
    handler = Fragile(effects, poison)
    stream = TrackedConsumer(
        TrackedConsumerSpec("stream-test", [backend.case_events], handler.batch),
        store,
        backend.bus,
        positions,
        dead_letter_topic=backend.dead_letter,
    )
    original = encode(poison, backend.case_events)
    for_another = (*original.headers, (REDRIVE_FOR, b"dispatch-test"))
    await backend.bus.publish(
        [original, encode(healthy, backend.case_events), Message(original.topic, original.key, b"{}", for_another)]
    )
    await stream.apply(await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 3))
    assert await OutboxRelay(store, backend.bus).relay_once() == 1  # the poison; the other redrive passed by

    dead_letters = DeadLetters(backend.bus, backend.dead_letter)
    (letter,) = await dead_letters.pending()
    assert letter.consumer == "stream-test"
    handler.fixed = True
    await dead_letters.redrive(letter.id)
    await stream.apply(await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 4))

    assert await effect_count(store, effects, poison.id) == 1
    assert await effect_count(store, effects) == 2
    assert await dead_letters.pending() == []


class CountingBus:
    """A bus that remembers where each read of the dead-letter topic started."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.reads: list[dict[TopicPartition, int]] = []

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        return await self.bus.end_offsets(topic)

    async def subscribe(
        self, group: str, topics: Sequence[str], *, start_at: StartPositions | None = None
    ) -> Subscription:
        assert start_at is not None

        async def noted(partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
            positions = dict(await start_at(partitions))
            self.reads.append(positions)
            return positions

        return await self.bus.subscribe(group, topics, start_at=noted)

    async def publish(self, messages: Sequence[Message]) -> None:
        await self.bus.publish(messages)


async def test_the_counts_are_kept_fresh_by_reading_only_what_the_topic_gained(backend: Backend) -> None:
    dead_letter = Message(backend.dead_letter, b"case-1", b"{}", ((DLQ_CONSUMER, b"c"), (DLQ_ORIGIN, b"t/0/1")))
    await backend.bus.publish([dead_letter])
    bus = CountingBus(backend.bus)
    dead_letters = DeadLetters(bus, backend.dead_letter)  # type: ignore[arg-type]
    await dead_letters.refresh()
    assert dead_letters.pending_counts() == {"c": 1}
    assert bus.reads == [{(backend.dead_letter, 0): 0}]

    await dead_letters.refresh()
    assert len(bus.reads) == 1  # nothing new: the end offsets were asked, nothing was read

    another = Message(backend.dead_letter, b"case-2", b"{}", ((DLQ_CONSUMER, b"c"), (DLQ_ORIGIN, b"t/0/2")))
    await backend.bus.publish([another])
    await dead_letters.refresh()
    assert bus.reads[1:] == [{(backend.dead_letter, 0): 1}]
    assert dead_letters.pending_counts() == {"c": 2}
