"""A stand-in for an OpenTelemetry collector: ``POST /v1/traces`` (OTLP over HTTP/protobuf) on
127.0.0.1, answered 200 with an empty body, counting what arrives.

The benchmark's tracing phase points the services' exporter at it (``OTEL_EXPORTER_OTLP_ENDPOINT``),
so that tracing's cost is measured with the spans really serialised and sent, and a setting that
silently traces nothing shows as nothing received. It runs in a thread of the benchmark process,
which is idle while its load generator (a process of its own) runs; decoding the requests to count
their spans costs the sink a fraction of what encoding them cost the services.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACES_PATH = "/v1/traces"


class TraceSink:
    """Accepts OTLP trace exports until closed: ``with TraceSink() as sink: ... sink.endpoint``."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes_received = 0
        self.spans = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="trace-sink", daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter appends ``/v1/traces``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def figures(self) -> dict[str, int]:
        """What arrived so far."""
        with self._lock:
            return {"exports": self.exports, "bytes": self.bytes_received, "spans": self.spans}

    def __enter__(self) -> TraceSink:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _received(self, wire: bytes, encoding: str | None) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(gzip.decompress(wire) if encoding == "gzip" else wire)
        spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self._lock:
            self.exports += 1
            self.bytes_received += len(wire)
            self.spans += spans

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as the exporter's session expects of a collector.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != TRACES_PATH:
                    self._answer(404)
                    return
                sink._received(body, self.headers.get("content-encoding"))
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: one line per export would fill the benchmark's output."""

        return Handler
