"""One report is one trace: from intake's HTTP request through the outbox, the event log and every
consumer it reaches (dispatch's, the assessment stream's), each hop a span of the same trace, the
trace context stored in each outbox row and carried by each record as ``ce_traceparent``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from services.runtime.runtime import Runtime
from shared.core import tracing
from shared.core.settings import Tracing
from shared.messaging.tables import headers_from_json
from tests.e2e.harness import Harness, running_city

STREET_VENDING = "02-05-01"  # routed to the street office of the place


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.start_tracing("all", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.stop_tracing()


async def until_spans(spans: InMemorySpanExporter, found: Callable[[tuple[ReadableSpan, ...]], bool]) -> None:
    try:
        async with asyncio.timeout(30):
            while not found(spans.get_finished_spans()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        names = sorted({span.name for span in spans.get_finished_spans()})
        raise AssertionError(f"the spans never showed it; spans seen: {names}") from None


def trace_id_of(header: bytes) -> int:
    """The trace id in a W3C ``traceparent`` (version-traceid-spanid-flags)."""
    version, trace_id, _span_id, _flags = header.decode().split("-")
    assert version == "00"
    return int(trace_id, 16)


async def outbox_headers(city: Harness, service: str, case_id: str) -> list[dict[str, bytes]]:
    runtime: Runtime = city.client._transport.app.state.runtime  # type: ignore[attr-defined]
    store = next(s for s in runtime.services if s.name == service).store
    outbox = store.outbox
    async with store.engine.connect() as connection:
        rows = await connection.execute(select(outbox.c.headers).where(outbox.c.key == case_id.encode()))
        return [dict(headers_from_json(headers)) for (headers,) in rows]


async def test_a_report_is_one_trace_from_intakes_request_through_dispatch_to_the_stream(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with running_city("embedded", tmp_path, tracing=Tracing.OTLP) as city:
        token = await city.login("inspector1")
        body = {"category_code": STREET_VENDING, "description": "占道经营", "location": city.fresh_spot()}
        # A caller's own trace context is not followed (it could splice the report into another
        # trace, or switch its sampling off), nor is its tracestate stored with the events.
        foreign = "0af7651916cd43dd8448eb211c80319c"
        response = await city.client.post(
            "/intake/reports",
            json=body,
            headers={
                "Authorization": f"Bearer {token}",
                "X-Request-ID": "trace-me-1",
                "traceparent": f"00-{foreign}-b7ad6b7169203331-00",
                "tracestate": "vendor=" + "x" * 200,
            },
        )
        assert response.status_code == 201, response.text
        case_id = response.json()["id"]
        await city.case_status(case_id, "dispatched")

        (request,) = [
            span
            for span in spans.get_finished_spans()
            if span.kind is SpanKind.SERVER and (span.attributes or {}).get("citycase.request_id") == "trace-me-1"
        ]
        assert request.name == "POST /intake/reports"  # the route, not the service's mount
        trace_id = request.context.trace_id
        assert request.parent is None
        assert trace_id != int(foreign, 16)

        def in_trace(name: str) -> Callable[[tuple[ReadableSpan, ...]], bool]:
            return lambda finished: any(s.name == name and s.context.trace_id == trace_id for s in finished)

        # Dispatch handled the filing in the report's trace, and what it did about it (the case
        # dispatched) reached the assessment stream in the same trace: two hops over the log.
        await until_spans(spans, in_trace("dispatch.lifecycle case.filed"))
        await until_spans(spans, in_trace("assessment.indicators case.filed"))
        await until_spans(spans, in_trace("assessment.indicators case.dispatched"))
        await until_spans(spans, in_trace("intake.case-file case.dispatched"))

        finished = spans.get_finished_spans()
        traced = [span for span in finished if span.context.trace_id == trace_id]
        consumer_spans = [span for span in traced if span.kind is SpanKind.CONSUMER]
        assert all(span.parent is not None and span.parent.is_remote for span in consumer_spans)
        assert {(span.attributes or {}).get("cloudevents.event_subject") for span in consumer_spans} == {case_id}
        # The database statements of the request and of the consumers are spans of the trace too.
        assert any(span.kind is SpanKind.CLIENT for span in traced)
        # The relay's polls and the timers' looks, outside any request or event, make no traces.
        assert all(span.parent is not None for span in finished if span.kind is SpanKind.CLIENT)

        # The context travels in the outbox rows, as the CloudEvents traceparent attribute.
        (filed,) = [h for h in await outbox_headers(city, "intake", case_id) if h["ce_type"] == b"case.filed"]
        assert trace_id_of(filed["ce_traceparent"]) == trace_id
        assert not [name for name in filed if "tracestate" in name]
        (dispatched,) = [
            h for h in await outbox_headers(city, "dispatch", case_id) if h["ce_type"] == b"case.dispatched"
        ]
        assert trace_id_of(dispatched["ce_traceparent"]) == trace_id
