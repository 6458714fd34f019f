"""A service's database as the unit of work: state changes, outbox messages and inbox entries
commit together or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import MetaData, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.core import tracing
from shared.core.clock import Clock
from shared.core.ids import new_id
from shared.db.driver import DriverStatement
from shared.db.engine import Writer, is_sqlite
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.bus import Message
from shared.messaging.tables import headers_to_json

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span


@dataclass(frozen=True, slots=True)
class _Pending:
    message_id: UUID
    message: Message


class Transaction:
    """One open database transaction of a service, with the messages it will publish."""

    def __init__(self, connection: AsyncConnection, store: ServiceStore) -> None:
        self.connection = connection
        self._store = store
        self._pending: list[_Pending] = []
        # The trace of each case whose events the transaction handles (consumers applying a batch),
        # by message key: a message about the case continues it.
        self._traces: dict[bytes, Context] = {}

    @property
    def clock(self) -> Clock:
        """The service's clock, which stamps the transaction's rows and messages."""
        return self._store.clock

    @property
    def on_postgresql(self) -> bool:
        """Whether the transaction runs on PostgreSQL (else on an embedded SQLite file)."""
        return self._store.on_postgresql

    def emit(self, event: Event) -> None:
        """Publish ``event`` on the case event log if, and only if, this transaction commits."""
        self.send(encode(event, self._store.case_events_topic), message_id=event.id)

    def send(self, message: Message, *, message_id: UUID | None = None) -> None:
        """Publish any message (dead letters, integration traffic) if this transaction commits.

        A message id seen before is published once: redelivered input that re-sends the same
        message with the same id does not duplicate it. While tracing, the message carries the
        current span's trace (the request's, or the event's being handled), else that of its case's
        event in the batch (``follow_trace``: a batch applied at once has no current event).
        """
        if tracing.active() and not tracing.carries_trace(message.headers):
            context = None if tracing.in_span() or message.key is None else self._traces.get(message.key)
            message = replace(message, headers=(*message.headers, *tracing.trace_headers(context)))
        self._pending.append(_Pending(message_id or new_id(), message))

    def follow_trace(self, case_id: str, span: Span) -> None:
        """Carry ``span``'s trace on in the messages about ``case_id`` this transaction sends."""
        self._traces[case_id.encode()] = tracing.context_of(span)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Undo both the database writes and the messages of the block if it raises."""
        mark = len(self._pending)
        try:
            async with self.connection.begin_nested():
                yield
        except BaseException:
            del self._pending[mark:]
            raise

    @property
    def sends_messages(self) -> bool:
        """Whether committing will put anything in the outbox."""
        return bool(self._pending)

    async def _flush_outbox(self) -> None:
        if not self._pending:
            return
        now = self._store.clock.now()
        rows = [
            {
                "message_id": pending.message_id,
                "topic": pending.message.topic,
                "key": pending.message.key,
                "headers": headers_to_json(pending.message.headers),
                "value": pending.message.value,
                "created_at": now,
            }
            for pending in self._pending
        ]
        await self._store.insert_into_outbox.run_many(self.connection, rows)


class ServiceStore:
    """The engine of one service plus its outbox and inbox tables."""

    def __init__(self, service: str, engine: AsyncEngine, metadata: MetaData, *, clock: Clock, case_events_topic: str):
        self.service = service
        self.engine = engine
        self.metadata = metadata
        self.clock = clock
        self.case_events_topic = case_events_topic
        self.outbox: Table = metadata.tables["outbox"]
        self.inbox: Table = metadata.tables["inbox"]
        # Built once, and run on the driver itself on PostgreSQL: every transaction that sends a
        # message runs it.
        self.insert_into_outbox = DriverStatement(self.insert_ignoring_duplicates(self.outbox, "message_id"))
        # Built once too, and on the driver: every batch a consumer applies runs both.
        self._processed = DriverStatement(
            select(self.inbox.c.event_id).where(
                self.inbox.c.consumer == bindparam("consumer"),
                self.inbox.c.event_id.in_(bindparam("event_ids", expanding=True)),
            )
        )
        self._insert_into_inbox = DriverStatement(self.inbox.insert())
        self._outbox_written = asyncio.Event()
        self.writer = Writer(engine)

    @property
    def on_postgresql(self) -> bool:
        """Whether the store is on PostgreSQL (else on an embedded SQLite file)."""
        return not is_sqlite(self.engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Open a transaction; commit on normal exit (outbox rows included), roll back on error."""
        async with self.writer.begin() as connection:
            tx = Transaction(connection, self)
            yield tx
            await tx._flush_outbox()
        if tx.sends_messages:
            self._outbox_written.set()

    async def wait_for_outbox(self, timeout_s: float) -> None:
        """Return when a transaction of this process wrote to the outbox, or after ``timeout_s``."""
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._outbox_written.wait()
        self._outbox_written.clear()

    async def already_processed(self, tx: Transaction, consumer: str, event_ids: Iterable[UUID]) -> set[UUID]:
        """Which of ``event_ids`` the consumer has applied before."""
        ids = list(event_ids)
        if not ids:
            return set()
        found = await self._processed.rows(tx.connection, {"consumer": consumer, "event_ids": ids})
        return {row["event_id"] for row in found}

    async def mark_processed(self, tx: Transaction, consumer: str, events: Iterable[Event]) -> None:
        """Remember that the consumer applied these events (same transaction as their effects)."""
        now = self.clock.now()
        rows = [{"consumer": consumer, "event_id": e.id, "event_type": e.type, "processed_at": now} for e in events]
        await self._insert_into_inbox.run_many(tx.connection, rows)

    def insert_ignoring_duplicates(self, table: Table, *columns: str) -> postgresql.Insert | sqlite.Insert:
        """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for this store's backend."""
        if self.on_postgresql:
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(columns))
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(columns))
