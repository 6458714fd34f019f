"""The pieces of the benchmark's scale-out and tracing phases that need no running city: the names
of a service's extra processes, and the sink that stands in for an OpenTelemetry collector."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.tracesink import TraceSink
from services.tools.launcher import replica_names


def test_a_service_s_first_process_keeps_its_name_and_the_others_are_numbered() -> None:
    assert replica_names("intake", 1) == ["intake"]
    assert replica_names("assessment", 3) == ["assessment", "assessment-2", "assessment-3"]


def test_a_service_cannot_run_on_no_process() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        replica_names("intake", 0)


def test_the_sink_counts_the_spans_and_bytes_an_otlp_exporter_sends() -> None:
    with TraceSink() as sink:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces")))
        tracer = provider.get_tracer("bench-test")
        for _ in range(5):
            with tracer.start_as_current_span("report"), tracer.start_as_current_span("statement"):
                pass
        provider.shutdown()  # exports what is queued
        figures = sink.figures()
    assert figures["spans"] == 10
    assert figures["exports"] >= 1
    assert figures["bytes"] > 0


def test_the_sink_refuses_other_paths_without_counting_them() -> None:
    with TraceSink() as sink:
        answer = httpx.post(f"{sink.endpoint}/v1/metrics", content=b"\x00")
        assert answer.status_code == 404
        assert sink.figures() == {"exports": 0, "bytes": 0, "spans": 0}
