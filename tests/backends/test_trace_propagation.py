"""The trace context crosses the bus with each event: stored in the outbox row, published as the
CloudEvents ``traceparent`` attribute (``ce_traceparent``), handled in a span that continues it,
and carried on by the rows the handling writes, batch by batch, each case in its own trace. With
tracing off, the rows and records are what they always were. A consumer's log lines name the
case and the event it handles.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from shared.core import tracing
from shared.core.logs import ContextStamp, JsonFormatter
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.bus import Record
from shared.messaging.consumer import ConsumerRunner, ConsumerSpec
from shared.messaging.relay import OutboxRelay
from shared.messaging.store import ServiceStore, Transaction
from shared.messaging.tables import headers_from_json, headers_to_json
from tests.backends.helpers import accepted, dispatched, filed, new_case_id, read_log
from tests.conftest import Backend


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.start_tracing("test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.stop_tracing()


async def outbox_headers(store: ServiceStore) -> list[list[list[str]]]:
    async with store.engine.connect() as connection:
        rows = await connection.execute(select(store.outbox.c.headers).order_by(store.outbox.c.seq))
        return [headers for (headers,) in rows]


def traceparent(headers: Sequence[tuple[str, bytes]]) -> tuple[int, int]:
    """The trace id and the parent span id of a record's or a row's ``ce_traceparent``."""
    value = dict(headers)[tracing.TRACEPARENT].decode()
    _version, trace_id, span_id, _flags = value.split("-")
    return int(trace_id, 16), int(span_id, 16)


def reacting(*, log: logging.Logger | None = None) -> Any:
    """A handler that answers a case's filing with its dispatch (and logs that it does)."""

    async def react(tx: Transaction, event: Event) -> None:
        if log is not None:
            log.info("dispatching the case")
        tx.emit(dispatched(event.subject))

    return react


async def test_with_tracing_off_the_rows_and_records_carry_what_they_always_did(backend: Backend) -> None:
    assert not tracing.active()
    intake = await backend.store("intake")
    event = filed(new_case_id())
    async with intake.transaction() as tx:
        tx.emit(event)
    assert await outbox_headers(intake) == [headers_to_json(encode(event, backend.case_events).headers)]
    await OutboxRelay(intake, backend.bus).relay_once()
    (record,) = await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 1)
    assert not tracing.carries_trace(record.headers)


async def test_an_event_continues_its_producers_trace_and_passes_it_on(
    backend: Backend, spans: InMemorySpanExporter
) -> None:
    intake, dispatch = await backend.store("intake"), await backend.store("dispatch")
    case_id = new_case_id()
    tracer = tracing.provider().get_tracer("test")
    with tracer.start_as_current_span("POST /intake/reports", kind=SpanKind.SERVER) as request:
        async with intake.transaction() as tx:
            tx.emit(filed(case_id))
    request_ids = (request.get_span_context().trace_id, request.get_span_context().span_id)
    (row,) = await outbox_headers(intake)
    assert traceparent(headers_from_json(row)) == request_ids
    await OutboxRelay(intake, backend.bus).relay_once()
    records = await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 1)
    assert traceparent(records[0].headers) == request_ids

    runner = ConsumerRunner(
        ConsumerSpec("dispatch.lifecycle", [backend.case_events], {"case.filed": reacting()}),
        dispatch,
        backend.bus,
        dead_letter_topic=backend.dead_letter,
    )
    await runner.apply(records)
    (handled,) = [span for span in spans.get_finished_spans() if span.kind is SpanKind.CONSUMER]
    assert handled.name == "dispatch.lifecycle case.filed"
    assert handled.parent is not None
    assert (handled.parent.trace_id, handled.parent.span_id) == request_ids
    # What dispatch wrote while handling it continues the same trace, from the handling's span.
    (reaction,) = await outbox_headers(dispatch)
    assert traceparent(headers_from_json(reaction)) == (handled.context.trace_id, handled.context.span_id)


async def test_a_batch_carries_each_cases_trace_on_to_that_cases_messages(
    backend: Backend, spans: InMemorySpanExporter
) -> None:
    intake, dispatch = await backend.store("intake"), await backend.store("dispatch")
    tracer = tracing.provider().get_tracer("test")
    cases = [new_case_id() for _ in range(3)]
    for case_id in cases:  # three requests, three traces
        with tracer.start_as_current_span("POST /intake/reports", kind=SpanKind.SERVER):
            async with intake.transaction() as tx:
                tx.emit(filed(case_id))
    await OutboxRelay(intake, backend.bus).relay_once()
    records = await read_log(backend.bus, backend.case_events, lambda seen: len(seen) >= 3)

    async def dispatch_all(tx: Transaction, events: Sequence[Event]) -> None:
        for event in events:
            tx.emit(dispatched(event.subject))

    spec = ConsumerSpec(
        "dispatch.lifecycle", [backend.case_events], {"case.filed": reacting()}, apply_batch=dispatch_all
    )
    await ConsumerRunner(spec, dispatch, backend.bus, dead_letter_topic=backend.dead_letter).apply(records)
    trace_of_case = {
        (span.attributes or {})["cloudevents.event_subject"]: span.context.trace_id
        for span in spans.get_finished_spans()
        if span.kind is SpanKind.CONSUMER
    }
    assert len(set(trace_of_case.values())) == 3
    async with dispatch.engine.connect() as connection:
        rows = (await connection.execute(select(dispatch.outbox.c.key, dispatch.outbox.c.headers))).all()
    assert {key.decode(): traceparent(headers_from_json(headers))[0] for key, headers in rows} == trace_of_case


async def test_a_consumers_log_lines_name_the_case_and_the_event(backend: Backend) -> None:
    dispatch = await backend.store("dispatch")
    case_id = new_case_id()
    event = accepted(case_id)
    message = encode(event, backend.case_events)
    record = Record(backend.case_events, 0, 0, message.key, message.value, message.headers)
    log = logging.getLogger("test.consumer")
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.addFilter(ContextStamp("all"))
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        spec = ConsumerSpec("dispatch.lifecycle", [backend.case_events], {"case.accepted": reacting(log=log)})
        await ConsumerRunner(spec, dispatch, backend.bus, dead_letter_topic=backend.dead_letter).apply([record])
    finally:
        log.removeHandler(handler)
    (line,) = [json.loads(text) for text in lines.getvalue().splitlines()]
    assert line["message"] == "dispatching the case"
    assert (line["case_id"], line["event_id"]) == (case_id, str(event.id))
