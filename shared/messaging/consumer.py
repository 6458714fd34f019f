"""Idempotent consumers: read a batch, apply each event once, commit effects and inbox together,
then commit the offsets.

A crash between the database commit and the offset commit redelivers the batch; the inbox makes
the second delivery a no-op. Records that are not events of the catalogue (malformed, unknown
type or version) go to the dead-letter topic with the reason, through the outbox of the same
transaction, and the consumer moves on. A handler that keeps failing on one event is retried a
few times and then dead-lettered too, so one poison event cannot stop a partition; one a business
rule refuses (a ``DomainError``) is not retried nor dead-lettered: the consumer moves on. A dead letter
sent again (``shared.messaging.dead_letters``) is read by the consumer it is for only, and applied
once however often it comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from uuid import NAMESPACE_URL, UUID, uuid5

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.core.errors import DomainError
from shared.core.logs import working_on
from shared.core.metrics import EVENTS_CONSUMED
from shared.core.outage_logs import StateLog
from shared.events.catalogue import CATALOGUE, Catalogue, UnknownEventType
from shared.events.envelope import Event
from shared.messaging.binding import MalformedEvent, decode
from shared.messaging.bus import Bus, Message, Record
from shared.messaging.bus.base import TopicPartition
from shared.messaging.spans import EventSpans
from shared.messaging.store import ServiceStore, Transaction

log = logging.getLogger(__name__)

Handler = Callable[[Transaction, Event], Awaitable[None]]
BatchHandler = Callable[[Transaction, Sequence[Event]], Awaitable[None]]

_MAX_BACKOFF_S = 5.0
# SQLSTATE classes of failures that say nothing about the event: connection exceptions (08),
# transaction rollbacks such as deadlocks and serialization failures (40), insufficient
# resources (53), operator intervention (57); and lock_not_available (55P03).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_SQLSTATES = ("55P03",)


def is_infrastructure_error(error: BaseException) -> bool:
    """Whether ``error`` is the database's or the network's fault rather than the event's, so the
    batch is retried for as long as it takes instead of counting against the event.
    """
    # ``PoolTimeout``: every pooled connection stayed busy (a hung database) past the pool's wait.
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout | ConnectionError | TimeoutError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error.orig, TimeoutError | ConnectionError):
            return True
        sqlstate = getattr(error.orig, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    return False


DLQ_REASON = "dlq_reason"
DLQ_CONSUMER = "dlq_consumer"
DLQ_ORIGIN = "dlq_origin"
# A dead letter sent again (``shared.messaging.dead_letters``) names the consumer it is for and the
# dead letter it comes from.
REDRIVE_FOR = "dlq_redrive_for"
REDRIVE_OF = "dlq_redrive_of"


def is_for(record: Record, consumer: str) -> bool:
    """Whether ``consumer`` reads ``record``: every record but one redriven for another consumer.

    The others had their turn with the original; one that failed on it too has a dead letter of
    its own, and applying the other's redrive as well would apply the event twice.
    """
    target = record.header(REDRIVE_FOR)
    return target is None or target == consumer.encode()


def inbox_key(record: Record, event: Event) -> UUID:
    """The id under which the inbox remembers that a consumer applied ``event`` from ``record``.

    A redriven event needs a key of its own: its id is in the inbox already, written when it was
    dead-lettered so that later copies of a poison event are dropped. The key derives from the
    event, not from the dead letter, so two dead letters of one event (two copies of a record the
    consumer could not read) are applied once.
    """
    if record.header(REDRIVE_FOR) is None:
        return event.id
    return uuid5(NAMESPACE_URL, f"citycase-redriven:{event.id}")


def dead_letter_id(consumer: str, origin: str) -> UUID:
    """The id of ``consumer``'s dead letter of the record at ``origin`` (topic/partition/offset):
    a redelivered record dead-lettered again by the same consumer is one dead letter, not two.
    """
    return uuid5(NAMESPACE_URL, f"citycase-dlq:{consumer}:{origin}")


@dataclass(frozen=True)
class ConsumerSpec:
    """What a consumer group reads and which handler applies each event type.

    Event types of the catalogue without a handler here are not this consumer's business and are
    skipped; types outside the catalogue are dead-lettered.
    """

    name: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # The same effects as the handlers, for a whole batch at once in a few statements: used
    # while no event fails; the handlers, event by event, apply a batch in which one does.
    apply_batch: BatchHandler | None = None
    # The types the records are read as: the case event log's, or another topic's own (the
    # integration topic carries messages for other systems, not case events).
    catalogue: Catalogue = CATALOGUE


class _RetryBatch(Exception):
    """A handler failed on an event that has attempts left: roll back and run the batch again."""


class _ApplyCarefully(Exception):
    """A handler failed in a batch applied without savepoints: apply it again, each event in a
    savepoint of its own, so the failure can be retried or dead-lettered alone.
    """


class ConsumerRunner:
    """Runs one consumer group member until cancelled."""

    def __init__(
        self,
        spec: ConsumerSpec,
        store: ServiceStore,
        bus: Bus,
        *,
        dead_letter_topic: str,
        batch_size: int = 200,
        max_attempts: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        self.spec = spec
        self.store = store
        self.bus = bus
        self.dead_letter_topic = dead_letter_topic
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.catalogue = spec.catalogue
        self._failures: Counter[UUID] = Counter()

    async def run(self) -> None:
        """Join the group and apply batches forever, rejoining after a lost connection."""
        with working_on(service=self.store.service):
            await rejoin_forever(self.spec.name, self._consume, self.retry_delay_s)

    async def _consume(self, joined: Callable[[], None]) -> None:
        subscription = await self.bus.subscribe(self.spec.name, self.spec.topics)
        joined()
        try:
            while True:
                records = await subscription.fetch(self.batch_size, timeout_s=1.0)
                if records:
                    await self.apply(records)
                    await subscription.commit(next_offsets(records))
        finally:
            await subscription.close()

    async def apply(self, records: Sequence[Record]) -> None:
        """Apply one batch durably, retrying until it commits.

        A batch is first applied without a savepoint per event: two statements less per event,
        which on a busy city is a good part of every consumer's work. Only a batch in which a
        handler fails pays for them, when it is applied again.
        """
        delay = self.retry_delay_s
        careful = False
        while True:
            try:
                await self._apply_once(records, careful=careful)
                return
            except asyncio.CancelledError:
                raise
            except _ApplyCarefully:
                careful = True
                continue
            except _RetryBatch:
                pass
            except Exception:
                log.warning("consumer %s could not commit a batch; retrying", self.spec.name, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)

    async def _apply_once(self, records: Sequence[Record], *, careful: bool) -> None:
        outcomes: Counter[str] = Counter()
        async with EventSpans(self.spec.name) as spans, self.store.transaction() as tx:
            decoded: list[tuple[Record, Event]] = []
            for record in records:
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
            wanted = [inbox_key(record, event) for record, event in decoded if event.type in self.spec.handlers]
            seen = await self.store.already_processed(tx, self.spec.name, wanted)
            fresh = _fresh(decoded, self.spec.handlers, seen, outcomes)
            spans.start(tx, fresh)
            # Dead-lettered events count as processed too, so a second copy of the same poison
            # event in a later batch is dropped instead of retried. A redriven event that fails
            # again does not: its new dead letter may be redriven in turn.
            processed = fresh
            if careful:
                processed = []
                for record, event in fresh:
                    with spans.handling(event):
                        outcome = await self._handle(tx, self.spec.handlers[event.type], record, event)
                    outcomes[outcome] += 1
                    if outcome == "applied" or record.header(REDRIVE_FOR) is None:
                        processed.append((record, event))
            elif self.spec.apply_batch is not None:
                if fresh:
                    await _without_savepoints(self.spec.apply_batch(tx, [event for _, event in fresh]))
                outcomes["applied"] += len(fresh)
            else:
                for _, event in fresh:
                    with spans.handling(event):
                        await _without_savepoints(self.spec.handlers[event.type](tx, event))
                outcomes["applied"] += len(fresh)
            # A redriven event under its own key (``inbox_key``), not under the event's id.
            await self.store.mark_processed(
                tx, self.spec.name, [replace(event, id=inbox_key(record, event)) for record, event in processed]
            )
        for _, event in fresh:
            self._failures.pop(event.id, None)
        for outcome, count in outcomes.items():
            EVENTS_CONSUMED.labels(self.spec.name, outcome).inc(count)

    async def _handle(self, tx: Transaction, handler: Handler, record: Record, event: Event) -> str:
        """Run one handler in a savepoint: ``applied``, ``refused`` by a business rule, or
        ``dead_lettered`` after its attempts."""
        try:
            async with tx.savepoint():
                await handler(tx, event)
            return "applied"
        except DomainError as exc:
            # A business rule refused the fact (a case in no state for it, a deadline in a year the
            # calendar cannot serve): it would be refused again on every attempt, and a lifecycle
            # event in the dead letters is a case nobody sees. The reaction keeps the case in view
            # where it matters (dispatch queues what it cannot route); the consumer moves on.
            log.warning("consumer %s: %s %s refused: %s", self.spec.name, event.type, event.id, exc.message)
            return "refused"
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            self._failures[event.id] += 1
            attempts = self._failures[event.id]
            if attempts < self.max_attempts:
                log.warning("consumer %s: %s %s failed (attempt %d)", self.spec.name, event.type, event.id, attempts)
                raise _RetryBatch from exc
            log.error("consumer %s: dead-lettering %s %s", self.spec.name, event.type, event.id)
            self._dead_letter(tx, record, f"handler failed {attempts} times: {type(exc).__name__}: {exc}")
            return "dead_lettered"

    def _dead_letter(self, tx: Transaction, record: Record, reason: str) -> None:
        dead_letter(tx, record, reason, consumer=self.spec.name, topic=self.dead_letter_topic)


def _fresh(
    decoded: Sequence[tuple[Record, Event]], handlers: Mapping[str, Handler], seen: set[UUID], outcomes: Counter[str]
) -> list[tuple[Record, Event]]:
    """The batch's events that are the consumer's business and not applied before, once each
    (a second copy in the same batch counts as a duplicate).
    """
    fresh: list[tuple[Record, Event]] = []
    for record, event in decoded:
        key = inbox_key(record, event)
        if event.type not in handlers:
            outcomes["ignored"] += 1
        elif key in seen:
            outcomes["duplicate"] += 1
        else:
            seen.add(key)
            fresh.append((record, event))
    return fresh


async def _without_savepoints(applying: Awaitable[None]) -> None:
    """Apply with no savepoint per event; a failure of the events (not of the database) means:
    the whole batch again, carefully.
    """
    try:
        await applying
    except Exception as exc:
        if is_infrastructure_error(exc):
            raise
        raise _ApplyCarefully from exc


async def rejoin_forever(
    name: str, consume: Callable[[Callable[[], None]], Awaitable[None]], first_delay_s: float
) -> None:
    """Run a consumer's ``consume`` loop until cancelled, joining its group again (with a growing
    pause) whenever the bus connection is lost. ``consume`` calls the function it is given once it
    has joined: a loss is logged when it begins (with its traceback) and when it ends, not at
    every failed rejoin in between.
    """
    membership = StateLog(log, f"consumer {name}")
    delay = first_delay_s
    while True:
        try:
            await consume(membership.succeeded)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            membership.failed(exc, traceback=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)


def dead_letter(tx: Transaction, record: Record, reason: str, *, consumer: str, topic: str) -> None:
    """Send ``record`` to the dead-letter ``topic`` with the reason, if ``tx`` commits."""
    origin = f"{record.topic}/{record.partition}/{record.offset}"
    headers = (
        *record.headers,
        (DLQ_REASON, reason.encode()),
        (DLQ_CONSUMER, consumer.encode()),
        (DLQ_ORIGIN, origin.encode()),
    )
    tx.send(Message(topic, record.key, record.value, headers), message_id=dead_letter_id(consumer, origin))


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """For each partition in the batch, the offset after the last record read."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        position = (record.topic, record.partition)
        offsets[position] = max(offsets.get(position, 0), record.offset + 1)
    return offsets
