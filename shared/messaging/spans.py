"""The spans of the events a consumer handles, while tracing is on (``shared.core.tracing``).

One span per event, a child of the span that wrote it (its ``traceparent``), even where a batch
of events is applied at once: a batch span of its own would start a trace of its own, and a case
would be a new trace at every service it reaches. Each event's span covers the batch it was applied
in (that is when it was handled) and is ended once the batch commits, or with the error when it
does not; the messages the batch writes about the event's case continue its trace
(``Transaction.follow_trace``). Off, nothing is made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING
from uuid import UUID

from shared.core import tracing
from shared.core.logs import working_on
from shared.events.envelope import Event
from shared.messaging.bus import Record
from shared.messaging.store import Transaction

if TYPE_CHECKING:
    from opentelemetry.trace import Span


class EventSpans:
    """The spans of one batch's events (a context manager that ends them)."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self._spans: dict[UUID, Span] = {}

    def start(self, tx: Transaction, events: Sequence[tuple[Record, Event]]) -> None:
        """Start the span of each event (while tracing), and carry it on in ``tx``'s messages about
        its case."""
        if not tracing.active():
            return
        for record, event in events:
            self._start(tx, record, event)

    def _start(self, tx: Transaction, record: Record, event: Event) -> None:
        if event.id in self._spans:
            return  # a second copy of the event in the batch: handled under the first one's span
        span = tracing.start_consumer_span(
            f"{self.consumer} {event.type}",
            record.headers,
            {
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": self.consumer,
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.message.id": str(event.id),
                "cloudevents.event_id": str(event.id),
                "cloudevents.event_type": event.type,
                "cloudevents.event_subject": event.subject,
            },
        )
        self._spans[event.id] = span
        tx.follow_trace(event.subject, span)

    @contextmanager
    def handling(self, event: Event) -> Iterator[None]:
        """The block handles ``event``: its span is the current one, its case and id are in the log lines."""
        with tracing.current(self._spans.get(event.id)), working_on(case_id=event.subject, event_id=event.id):
            yield

    async def __aenter__(self) -> EventSpans:
        """Entered beside the batch's transaction (``async with spans, store.transaction()``)."""
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """End the spans, failed when the batch did not commit."""
        for span in self._spans.values():
            if error is not None:
                tracing.failed(span, error)
            span.end()
        self._spans.clear()
