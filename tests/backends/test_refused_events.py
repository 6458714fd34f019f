"""A business rule's refusal of an event (a ``DomainError``, e.g. a deadline in a year the
calendar cannot serve) is not retried into the dead letters: the same event would be refused
every time, and a lifecycle event in the dead letters is a case nobody sees. The consumer
applies nothing of it, counts it refused and goes on, on both backends.
"""

from __future__ import annotations

from shared.city.calendar import CalendarDataMissing
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.consumer import ConsumerRunner, ConsumerSpec
from shared.messaging.relay import OutboxRelay
from shared.messaging.store import Transaction
from tests.backends.helpers import cancelled, consume, effect_count, effects_metadata, new_case_id, record_effect
from tests.conftest import Backend


async def test_an_event_a_business_rule_refuses_is_neither_retried_nor_dead_lettered(backend: Backend) -> None:
    metadata, effects = effects_metadata()
    dispatch = await backend.store("dispatch", metadata)
    refused, healthy = cancelled(new_case_id()), cancelled(new_case_id())
    apply_effect = record_effect(effects)
    attempts: list[Event] = []

    async def reaction(tx: Transaction, event: Event) -> None:
        await apply_effect(tx, event)  # rolled back with the savepoint of the refusal
        if event.id == refused.id:
            attempts.append(event)
            raise CalendarDataMissing(2199)

    runner = ConsumerRunner(
        ConsumerSpec("dispatch-test", [backend.case_events], {"case.cancelled": reaction}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
        max_attempts=3,
        retry_delay_s=0.01,
    )
    await backend.bus.publish([encode(refused, backend.case_events), encode(healthy, backend.case_events)])
    seen = await consume(backend.bus, runner.apply, "dispatch-test", backend.case_events, lambda seen: len(seen) >= 2)

    assert await effect_count(dispatch, effects, healthy.id) == 1
    assert await effect_count(dispatch, effects, refused.id) == 0
    # Tried with the batch at once, then alone in its savepoint, refused: not retried (each of
    # its three attempts would have been a call more).
    assert len(attempts) == 2
    assert await OutboxRelay(dispatch, backend.bus).relay_once() == 0  # no dead letter to publish
    # Remembered as processed: delivered again, it is a duplicate, not another refusal.
    await runner.apply([record for record in seen if record.header("ce_id") == str(refused.id).encode()])
    assert len(attempts) == 2
