"""Traces (OpenTelemetry): off unless the ``tracing`` setting says ``otlp``; then the spans of
HTTP requests (FastAPI), database statements (SQLAlchemy), outbound calls (httpx) and of every
event handled are exported over OTLP (HTTP/protobuf) to where the standard ``OTEL_EXPORTER_OTLP_*``
variables say (``OTEL_EXPORTER_OTLP_ENDPOINT``, default ``http://localhost:4318``).

A report is one trace from intake's HTTP call through every consumer: the trace context of the
work that writes an outbox row is stored in the row's headers and travels with the event as the
CloudEvents ``traceparent`` extension (``ce_traceparent`` in Kafka's binary mode); a consumer
handles the event in a span whose parent is that context, and the rows its handling writes carry
the new span on.

A trace starts at a request, an event handled or a delivery to another system; a database
statement outside them (the relay's polls, the timers' looks) starts none (``_work_only``).

A trace context from outside is not followed, and ours is not sent out: a caller's ``traceparent``
could choose trace ids (its request spliced into another report's trace), switch sampling off for
the report's whole chain, or bring a ``tracestate`` of kilobytes to be stored with every event of
a log kept forever; a hotline's system has no use for our trace ids. So the process's global
propagator (what the HTTP instrumentations extract and inject with) carries nothing, and the
bus's propagation (``trace_headers``, ``producer_context``) uses its own, the ``traceparent`` only.

Off, nothing of the SDK is imported or set up, and the hot path pays one test of a module flag
(``active()``) per message written and per batch consumed. The HTTP/protobuf exporter rather than
gRPC: it needs no grpcio (a large compiled package), and every collector (the OpenTelemetry
Collector, Jaeger, Tempo) takes both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.core.outage_logs import quiet_library_logs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

# CloudEvents' distributed tracing extension, as Kafka binary-mode headers.
TRACEPARENT = "ce_traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
# Requests that are not work (probes and scrapes, many a minute) make no traces.
_NOT_TRACED_URLS = "healthz,readyz,metrics"
_FLUSH_TIMEOUT_MS = 5000

Headers = tuple[tuple[str, bytes], ...]


class _Tracing:
    """The process's tracing once started: its provider, the tracer of citycase's own spans, and
    the global propagator it replaced (put back when it stops)."""

    def __init__(self, provider: TracerProvider, replaced: TextMapPropagator) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("citycase")
        self.replaced = replaced


class _Unpropagated(TextMapPropagator):
    """The process's global propagator while it traces: a request's trace context is not followed
    (each starts a trace of its own), and none is sent out (see the module's text)."""

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        # As a propagator that finds nothing answers: the context given, else a new root one (an
        # empty composite answers None, which the instrumentations would attach as the current one).
        return context if context is not None else Context()

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        return

    @property
    def fields(self) -> set[str]:
        return set()


_tracing: _Tracing | None = None


def active() -> bool:
    """Whether this process records traces."""
    return _tracing is not None


def start_tracing(service: str, *, exporter: SpanExporter | None = None) -> None:
    """Record traces from now on, as ``service`` (the resource's ``service.name``), exported over
    OTLP, or to ``exporter`` when given (tests: an in-memory one, spans exported as they end).
    A second call changes nothing: the first one's provider stays.
    """
    global _tracing
    if _tracing is not None:
        return
    # Imported here: a process that does not trace never loads the SDK.
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "citycase"}),
        sampler=ParentBased(root=_work_only()),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        # A collector that is away: the exporter's warning per retry of every batch, once.
        quiet_library_logs("opentelemetry")
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    replaced = propagate.get_global_textmap()
    propagate.set_global_textmap(_Unpropagated())
    _tracing = _Tracing(provider, replaced)


def stop_tracing() -> None:
    """Export what is left and stop recording (the end of a process, or of a test)."""
    global _tracing
    if _tracing is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
        SQLAlchemyInstrumentor().uninstrument()
    _tracing.provider.shutdown()
    propagate.set_global_textmap(_tracing.replaced)
    _tracing = None


def flush() -> None:
    """Export the spans ended so far (a process stopping)."""
    if _tracing is not None:
        # Bounded: a collector that is away must not hold a stopping process for the exporter's retries.
        _tracing.provider.force_flush(timeout_millis=_FLUSH_TIMEOUT_MS)


def provider() -> TracerProvider:
    """The provider of a process that traces (the instrumentations of its app take it)."""
    if _tracing is None:
        raise RuntimeError("tracing is off")
    return _tracing.provider


def not_traced_urls() -> str:
    """The URLs the app's instrumentation leaves out (FastAPIInstrumentor's ``excluded_urls``)."""
    return _NOT_TRACED_URLS


def instrument_engines(engines: Sequence[AsyncEngine]) -> None:
    """Trace the statements of ``engines`` (a span each, inside the request's or the event's)."""
    if _tracing is None or not engines:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        # One app per process outside tests; a test's second app replaces the first one's engines.
        instrumentor.uninstrument()
    instrumentor.instrument(
        engines=[engine.sync_engine for engine in engines],
        tracer_provider=_tracing.provider,
        # Its declared range (< 2.1) predates SQLAlchemy 2.1; what it uses, the engine events
        # (before/after_cursor_execute), is SQLAlchemy's stable API, unchanged in 2.1
        # (tests/e2e/test_traces.py sees the statements' spans).
        skip_dep_check=True,
    )


def trace_headers(context: Context | None = None) -> Headers:
    """The headers carrying ``context`` (else the current span's) on to a message's consumers;
    none when there is no span to carry, or tracing is off."""
    if _tracing is None:
        return ()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    traceparent = carrier.get("traceparent")
    return () if traceparent is None else ((TRACEPARENT, traceparent.encode("ascii")),)


def in_span() -> bool:
    """Whether code runs in a span (a request's, an event's): what a message it writes continues."""
    return trace.get_current_span().get_span_context().is_valid


def carries_trace(headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether ``headers`` carry a trace context already (a dead letter keeps its event's)."""
    return any(name == TRACEPARENT for name, _ in headers)


def producer_context(headers: Sequence[tuple[str, bytes]]) -> Context | None:
    """The trace context a message's producer sent with it, if any (a malformed one is none)."""
    for name, value in headers:
        if name == TRACEPARENT:
            return _PROPAGATOR.extract({"traceparent": value.decode("ascii", errors="replace")})
    return None


def start_consumer_span(name: str, headers: Sequence[tuple[str, bytes]], attributes: Mapping[str, Any]) -> Span:
    """A span for handling one message, a child of its producer's (a new trace when it came
    without one); the caller ends it. Only while tracing is on."""
    assert _tracing is not None
    return _tracing.tracer.start_span(
        name, context=producer_context(headers), kind=SpanKind.CONSUMER, attributes=dict(attributes)
    )


def span(name: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Any]:
    """A current span around a piece of work (a delivery to another system) while tracing is on,
    else a context manager that does nothing."""
    if _tracing is None:
        return nullcontext()
    return _tracing.tracer.start_as_current_span(name, attributes=dict(attributes))


def failed(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed with ``error``."""
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"[:300]))


def context_of(span: Span) -> Context:
    """A context whose current span is ``span`` (a parent to continue its trace from)."""
    return trace.set_span_in_context(span)


def rename_current(name: str, attributes: Mapping[str, Any]) -> None:
    """Rename the current span, and add ``attributes`` to it."""
    span = trace.get_current_span()
    span.update_name(name)
    span.set_attributes(dict(attributes))


def annotate_current(attributes: Mapping[str, Any]) -> None:
    """Add ``attributes`` to the current span (the request's, say)."""
    trace.get_current_span().set_attributes(dict(attributes))


@contextmanager
def current(span: Span | None) -> Iterator[None]:
    """``span`` as the current span for the block (nothing when None)."""
    if span is None:
        yield
        return
    with trace.use_span(span, end_on_exit=False):
        yield


def current_ids() -> tuple[str, str] | None:
    """The current trace id and span id (hex), for log lines; None when tracing is off or no span
    is current."""
    if _tracing is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _work_only() -> Any:
    """The sampler of the traces' first spans (a class made here: the SDK is imported only when
    tracing starts)."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class WorkOnly(Sampler):
        """Starts a trace for a request, an event handled or a piece of work, never for a database
        statement or an outbound call outside them: the relay polls its outbox several times a
        second and the timers look for due deadlines, and each would be a trace of one statement.
        Spans inside a trace follow their parent's decision (``ParentBased``)."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self) -> str:
            return "WorkOnly"

    return WorkOnly()
