"""The messaging backbone's contract, on both backends (embedded; PostgreSQL + Kafka)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from unittest.mock import patch

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.bus import Message, Record
from shared.messaging.consumer import DLQ_CONSUMER, DLQ_ORIGIN, DLQ_REASON, ConsumerRunner, ConsumerSpec, Handler
from shared.messaging.relay import OutboxRelay
from shared.messaging.store import ServiceStore, Transaction
from tests.backends.helpers import (
    accepted,
    cancelled,
    consume,
    dispatched,
    effect_count,
    effects_metadata,
    filed,
    new_case_id,
    read_log,
    record_effect,
    wait_until,
)
from tests.conftest import Backend


class Boom(Exception):
    """Raised by a test to abort a transaction."""


async def test_committed_event_takes_effect_exactly_once_even_when_the_relay_dies_before_marking_sent(
    backend: Backend,
) -> None:
    intake = await backend.store("intake")
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    event = cancelled(new_case_id())
    async with intake.transaction() as tx:
        tx.emit(event)

    relay = OutboxRelay(intake, backend.bus)
    # The relay publishes, then dies before it can mark the row sent...
    with patch.object(OutboxRelay, "_mark_sent", side_effect=Boom("killed")), pytest.raises(Boom):
        await relay.relay_once()
    # ...so its successor publishes the same row again.
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0

    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {event.type: record_effect(effects)}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
    )
    records = await consume(
        backend.bus, runner.apply, "dispatch-test", backend.case_events, lambda seen: len(seen) >= 2
    )
    assert [r.header("ce_id") for r in records] == [str(event.id).encode()] * 2
    assert await effect_count(dispatch, effects, event.id) == 1

    # A restarted consumer of the same group resumes after the committed offsets: nothing new.
    again = await consume(backend.bus, runner.apply, "dispatch-test", backend.case_events, lambda _: True)
    assert again == []
    assert await effect_count(dispatch, effects) == 1


async def test_redelivered_batch_is_a_no_op(backend: Backend) -> None:
    intake = await backend.store("intake")
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    events = [cancelled(new_case_id()) for _ in range(5)]
    async with intake.transaction() as tx:
        for event in events:
            tx.emit(event)
    await OutboxRelay(intake, backend.bus).relay_once()
    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {"case.cancelled": record_effect(effects)}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
    )
    records = await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 5)
    # The consumer applied the batch, then crashed before committing its offsets: it gets it again.
    await runner.apply(records)
    await runner.apply(records)
    assert await effect_count(dispatch, effects) == 5


async def test_rolled_back_transaction_publishes_nothing(backend: Backend) -> None:
    intake = await backend.store("intake")
    ghost, marker = cancelled(new_case_id()), cancelled(new_case_id())

    async def emit_then_fail() -> None:
        async with intake.transaction() as tx:
            tx.emit(ghost)
            raise Boom

    with pytest.raises(Boom):
        await emit_then_fail()
    async with intake.transaction() as tx:
        tx.emit(marker)
    assert await OutboxRelay(intake, backend.bus).relay_once() == 1

    records = await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 1)
    assert [r.header("ce_id") for r in records] == [str(marker.id).encode()]
    async with intake.engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(intake.outbox))).scalar_one() == 1


async def test_writes_succeed_while_the_bus_is_down_and_the_outbox_drains_when_it_is_back(backend: Backend) -> None:
    assert backend.stop_bus is not None
    assert backend.start_bus is not None
    intake = await backend.store("intake")
    relay_task = asyncio.create_task(OutboxRelay(intake, backend.bus, poll_seconds=0.05).run())
    try:
        before = cancelled(new_case_id())
        async with intake.transaction() as tx:
            tx.emit(before)
        await wait_until(lambda: _unsent(intake, 0))

        await backend.stop_bus()
        during = [cancelled(new_case_id()) for _ in range(20)]
        for event in during:
            async with intake.transaction() as tx:  # every write commits with no bus
                tx.emit(event)
        assert await _count_unsent(intake) == 20

        await backend.start_bus()
        await wait_until(lambda: _unsent(intake, 0), timeout_s=120)
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)

    wanted = {str(e.id).encode() for e in [before, *during]}
    records = await read_log(
        backend.bus, backend.case_events, lambda seen: wanted <= {r.header("ce_id") for r in seen}, timeout_s=60
    )
    assert wanted <= {r.header("ce_id") for r in records}


async def test_malformed_and_unknown_events_are_dead_lettered_and_the_consumer_goes_on(backend: Backend) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    good = cancelled(new_case_id())
    valid = encode(good, backend.case_events)
    headers = dict(valid.headers)
    unknown_type = {**headers, "ce_type": b"case.teleported", "ce_dataschema": b"urn:citycase:event:case.teleported:v1"}
    bad_payload = {**headers, "ce_id": b"0195f7a0-0000-7000-8000-000000000001"}
    await backend.bus.publish(
        [
            Message(backend.case_events, b"case-1", b"\xff not json", valid.headers),
            Message(backend.case_events, b"case-1", valid.value, tuple(unknown_type.items())),
            Message(backend.case_events, b"case-1", b'{"reason": 42}', tuple(bad_payload.items())),
            Message(backend.case_events, b"case-1", b'{"x": 1}', (("content-type", b"application/json"),)),
            valid,
        ]
    )
    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {"case.cancelled": record_effect(effects)}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
    )
    await consume(backend.bus, runner.apply, "dispatch-test", backend.case_events, lambda seen: len(seen) >= 5)
    assert await effect_count(dispatch, effects, good.id) == 1

    # Dead letters leave through the consumer's outbox, committed with its progress.
    assert await OutboxRelay(dispatch, backend.bus).relay_once() == 4
    letters = await read_log(backend.bus, backend.dead_letter, lambda seen: len(seen) >= 4)
    reasons = [r.header(DLQ_REASON).decode() for r in letters]  # type: ignore[union-attr]
    assert "not a JSON object" in reasons[0]
    assert "unknown event type 'case.teleported' version 1" in reasons[1]
    assert "cancelled_by: Field required" in reasons[2]
    assert "reason: Input should be a valid string" in reasons[2]
    assert "not a CloudEvent" in reasons[3]
    assert {r.header(DLQ_CONSUMER) for r in letters} == {b"dispatch-test"}
    assert all(r.header(DLQ_ORIGIN).startswith(backend.case_events.encode()) for r in letters)  # type: ignore[union-attr]
    assert letters[0].value == b"\xff not json"


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_its_attempts(backend: Backend) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    poison, healthy = cancelled(new_case_id()), cancelled(new_case_id())
    await backend.bus.publish([encode(poison, backend.case_events), encode(healthy, backend.case_events)])
    apply_effect = record_effect(effects)

    async def fragile(tx: Transaction, event: Event) -> None:
        await apply_effect(tx, event)  # rolled back with the savepoint when the handler fails
        if event.id == poison.id:
            raise ValueError("cannot handle this one")

    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {"case.cancelled": fragile}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
        max_attempts=3,
        retry_delay_s=0.01,
    )
    await consume(backend.bus, runner.apply, "dispatch-test", backend.case_events, lambda seen: len(seen) >= 2)
    assert await effect_count(dispatch, effects, healthy.id) == 1
    assert await effect_count(dispatch, effects, poison.id) == 0
    await OutboxRelay(dispatch, backend.bus).relay_once()
    letters = await read_log(backend.bus, backend.dead_letter, lambda seen: len(seen) >= 1)
    assert letters[0].header("ce_id") == str(poison.id).encode()
    assert letters[0].header(DLQ_REASON) == b"handler failed 3 times: ValueError: cannot handle this one"


async def test_a_batch_handler_applies_a_clean_batch_at_once_and_the_handlers_take_over_when_one_event_fails(
    backend: Backend,
) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    one_by_one = record_effect(effects)
    poison = cancelled(new_case_id())
    batches: list[int] = []

    async def all_at_once(tx: Transaction, events: Sequence[Event]) -> None:
        batches.append(len(events))
        for event in events:
            await one_by_one(tx, event)  # rolled back with the batch when one of them fails
            if event.id == poison.id:
                raise ValueError("cannot handle this one")

    async def fragile(tx: Transaction, event: Event) -> None:
        if event.id == poison.id:
            raise ValueError("cannot handle this one")
        await one_by_one(tx, event)

    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {"case.cancelled": fragile}, apply_batch=all_at_once),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
        max_attempts=1,
        retry_delay_s=0.01,
    )
    clean = [cancelled(new_case_id()), cancelled(new_case_id())]
    copy = encode(clean[0], backend.case_events)
    await runner.apply([_as_record(copy, 0), _as_record(encode(clean[1], backend.case_events), 1), _as_record(copy, 2)])
    assert batches == [2]  # one call for the batch, the copy dropped
    assert await effect_count(dispatch, effects) == 2

    healthy = cancelled(new_case_id())
    mixed = [encode(healthy, backend.case_events), encode(poison, backend.case_events)]
    await runner.apply([_as_record(message, 3 + n) for n, message in enumerate(mixed)])
    assert batches == [2, 2]  # tried at once, failed, then event by event
    assert await effect_count(dispatch, effects, healthy.id) == 1
    assert await effect_count(dispatch, effects, poison.id) == 0
    assert await OutboxRelay(dispatch, backend.bus).relay_once() == 1  # the poison, dead-lettered


def _as_record(message: Message, offset: int) -> Record:
    return Record(message.topic, 0, offset, message.key, message.value, message.headers)


async def test_two_copies_of_a_poison_event_in_one_batch_make_one_dead_letter(backend: Backend) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    poison, healthy = cancelled(new_case_id()), cancelled(new_case_id())
    copy = encode(poison, backend.case_events)
    await backend.bus.publish([copy, encode(healthy, backend.case_events), copy])

    async def fragile(tx: Transaction, event: Event) -> None:
        if event.id == poison.id:
            raise ValueError("cannot handle this one")
        await record_effect(effects)(tx, event)

    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {"case.cancelled": fragile}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
        retry_delay_s=0.01,
    )
    async with asyncio.timeout(30):
        await consume(backend.bus, runner.apply, "dispatch-test", backend.case_events, lambda seen: len(seen) >= 3)
    assert await effect_count(dispatch, effects) == 1
    assert await OutboxRelay(dispatch, backend.bus).relay_once() == 1


async def test_per_case_order_is_kept_across_producers_of_different_services(backend: Backend) -> None:
    """Intake files, dispatch reacts by dispatching, handling reacts by accepting: an observer sees
    each case's events in that order, in one partition, though three services produced them.
    """
    intake = await backend.store("intake")
    dispatch = await backend.store("dispatch")
    handling = await backend.store("handling")
    cases = [new_case_id() for _ in range(30)]

    async def dispatch_it(tx: Transaction, event: Event) -> None:
        tx.emit(dispatched(event.subject))

    async def accept_it(tx: Transaction, event: Event) -> None:
        tx.emit(accepted(event.subject))

    def runner(store: ServiceStore, name: str, event_type: str, handler: Handler) -> ConsumerRunner:
        spec = ConsumerSpec(name, [backend.case_events], {event_type: handler})
        return ConsumerRunner(spec, store, backend.bus, dead_letter_topic=backend.dead_letter)

    workers = [
        OutboxRelay(intake, backend.bus, poll_seconds=0.05).run(),
        OutboxRelay(dispatch, backend.bus, poll_seconds=0.05).run(),
        OutboxRelay(handling, backend.bus, poll_seconds=0.05).run(),
        runner(dispatch, "dispatch-test", "case.filed", dispatch_it).run(),
        runner(handling, "handling-test", "case.dispatched", accept_it).run(),
    ]
    tasks = [asyncio.create_task(worker) for worker in workers]
    try:
        for case_id in cases:  # one transaction per case, interleaving the services' work
            async with intake.transaction() as tx:
                tx.emit(filed(case_id))
        records = await read_log(
            backend.bus,
            backend.case_events,
            lambda seen: sum(r.header("ce_type") == b"case.accepted" for r in seen) >= len(cases),
            timeout_s=60,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    by_case: dict[bytes, list[Record]] = defaultdict(list)
    for record in records:
        by_case[record.key or b""].append(record)
    assert set(by_case) == {case_id.encode() for case_id in cases}
    for case_records in by_case.values():
        assert len({r.partition for r in case_records}) == 1
        in_log_order = sorted(case_records, key=lambda r: r.offset)
        assert [r.header("ce_type") for r in in_log_order] == [b"case.filed", b"case.dispatched", b"case.accepted"]


async def _count_unsent(store: ServiceStore) -> int:
    async with store.engine.connect() as connection:
        query = select(func.count()).select_from(store.outbox).where(store.outbox.c.sent_at.is_(None))
        return int((await connection.execute(query)).scalar_one())


async def _unsent(store: ServiceStore, expected: int) -> bool:
    return await _count_unsent(store) == expected


async def test_a_header_without_a_value_reads_as_empty_bytes(backend: Backend) -> None:
    """Kafka lets any producer write a header with no value; the records the bus hands out carry bytes."""
    if backend.name == "embedded":
        pytest.skip("only Kafka has headers without a value")
    producer = AIOKafkaProducer(bootstrap_servers=backend.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            backend.case_events, b"{}", key=b"k", headers=[("ce_id", b"one"), ("empty", None), ("ce_type", b"x")]
        )
        await producer.send_and_wait(backend.case_events, b"{}", key=b"k", headers=[("ce_id", b"two")])
    finally:
        await producer.stop()

    records = await read_log(backend.bus, backend.case_events, until=lambda seen: len(seen) == 2)

    assert [record.headers for record in records] == [
        (("ce_id", b"one"), ("empty", b""), ("ce_type", b"x")),
        (("ce_id", b"two"),),
    ]
