"""The outbox relay: publishes committed outbox rows to the bus, in order, then marks them sent.

At-least-once by construction: a relay that dies after publishing and before marking publishes
the same rows again, and consumers drop the duplicates through their inbox. One relay per service
publishes at a time (a PostgreSQL advisory lock elects it) so ``seq`` order is publication order.

A batch is one publish. When the bus stores only part of it, the stored rows are marked sent
all the same; if the bus refused a row for good (``Unpublishable``), the rows it did not store
are tried again one by one, since a refused record fails the records batched with it too, and
only a row refused alone is charged an attempt. At its last attempt the row is parked (see
``shared.messaging.parking``); the later rows of its case wait behind it, every other row flows.
A failure that may pass (the broker down, a timeout) is never charged to a row: the relay backs
off and tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.core.logs import SERVICE, working_on
from shared.core.metrics import OUTBOX_PARKED, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from shared.core.outage_logs import StateLog
from shared.db.driver import DriverStatement
from shared.messaging.bus import Bus, Message, PublishFailed, Unpublishable
from shared.messaging.parking import held_by_a_parked_row
from shared.messaging.store import ServiceStore
from shared.messaging.tables import headers_from_json

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 5.0
_LEADERSHIP_CHECK_S = 5.0
_PURGE_EVERY_S = 300.0


class OutboxRelay:
    """Moves one service's outbox to the bus until cancelled."""

    def __init__(
        self,
        store: ServiceStore,
        bus: Bus,
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.2,
        retention: timedelta = timedelta(hours=24),
        max_attempts: int = 3,
        round_timeout: timedelta = timedelta(seconds=60),
    ) -> None:
        """``round_timeout``: a round that takes longer (a publish or a statement that hangs) is
        given up, and the relay steps down so that another replica's may lead."""
        self.store = store
        self.bus = bus
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.max_attempts = max_attempts
        self.round_timeout_s = round_timeout.total_seconds()
        # The series exists from the start: an alert on "nothing published for 5 minutes" cannot see
        # a relay that never published if its counter appears only at the first publish.
        OUTBOX_PUBLISHED.labels(store.service)
        self._lock_key = zlib.crc32(f"citycase.outbox.{store.service}".encode())
        # Built once, and run on the driver: the relay runs them every round, and a statement built
        # per round costs more CPU to build and key for the cache than a few rows cost to publish.
        outbox = store.outbox
        self._next_batch_query = DriverStatement(
            select(outbox.c.seq, outbox.c.topic, outbox.c.key, outbox.c.headers, outbox.c.value, outbox.c.attempts)
            .where(outbox.c.sent_at.is_(None), outbox.c.parked_at.is_(None), ~held_by_a_parked_row(outbox))
            .order_by(outbox.c.seq)
            .limit(batch_size)
        )
        self._mark_sent_statement = DriverStatement(
            update(outbox).where(outbox.c.seq.in_(bindparam("seqs", expanding=True)))
        )
        self._leader_connection: AsyncConnection | None = None
        # A broker outage fails every round: logged as it begins and ends, not once per round.
        self._health = StateLog(log, f"the outbox relay of {store.service}")
        # Another replica's relay leads: this one waits, and its progress means nothing.
        self.standby = False
        # When a round last ended well (published, or found nothing publishable), on the monotonic clock.
        self._progressed_at = time.monotonic()

    async def run(self) -> None:
        """Relay forever: publish what is there, wait for more, back off while the bus is down."""
        SERVICE.set(self.store.service)  # in the log lines of this task (its own context) for its life
        backoff = self.poll_seconds
        loop = asyncio.get_running_loop()
        last_check = last_purge = loop.time()
        self._progressed_at = time.monotonic()
        try:
            while True:
                try:
                    check = loop.time() - last_check > _LEADERSHIP_CHECK_S
                    if check:
                        last_check = loop.time()
                    if not await self._is_leader(force_check=check):
                        await asyncio.sleep(_LEADERSHIP_CHECK_S)
                        continue
                    async with asyncio.timeout(self.round_timeout_s):
                        published = await self.relay_once()
                    if loop.time() - last_purge > _PURGE_EVERY_S:
                        await self.purge_sent()
                        last_purge = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._health.failed(exc, traceback=True)
                    await self._step_down()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                self._health.succeeded()
                self._progressed_at = time.monotonic()
                backoff = self.poll_seconds
                if published < self.batch_size:
                    await self.store.wait_for_outbox(self.poll_seconds)
        finally:
            await self._step_down()

    async def relay_once(self) -> int:
        """Publish the oldest publishable rows (one batch) and mark what the bus stored; the number
        published. Raises, after marking what was stored, when the bus failed in a way that may pass.
        """
        rows = await self._next_batch()
        if not rows:
            return 0
        try:
            await self._publish([_message(row) for row in rows])
        except PublishFailed as failed:
            await self._mark_sent([row.seq for n, row in enumerate(rows) if n not in failed.failures])
            if not any(isinstance(failure, Unpublishable) for failure in failed.failures.values()):
                raise
            not_stored = [rows[n] for n in sorted(failed.failures)]
            return len(rows) - len(not_stored) + await self._publish_one_by_one(not_stored)
        await self._mark_sent([row.seq for row in rows])
        return len(rows)

    async def _next_batch(self) -> list[_Row]:
        """The oldest unsent rows, parked ones and those held behind them left out."""
        async with self.store.engine.connect() as connection:
            return [_Row(**row) for row in await self._next_batch_query.rows(connection, {})]

    async def _publish(self, messages: list[Message]) -> None:
        try:
            await self.bus.publish(messages)
        except Exception as exc:
            OUTBOX_PUBLISH_FAILURES.labels(self.store.service, failure_kind(exc)).inc()
            raise

    def stalled_for(self) -> float | None:
        """Seconds since this relay last made progress (published, or found nothing publishable),
        or None while another replica's relay leads: this one is not the one to blame then."""
        return None if self.standby else time.monotonic() - self._progressed_at

    async def _publish_one_by_one(self, rows: list[_Row]) -> int:
        """Publish ``rows`` alone, in order, to learn which ones the bus refuses for themselves;
        charge each of those an attempt. The later rows of a refused row's case wait for the next
        round, behind it. The number published.
        """
        published = 0
        refused: set[tuple[str, bytes]] = set()
        for row in rows:
            if row.key is not None and (row.topic, row.key) in refused:
                continue
            try:
                await self._publish([_message(row)])
            except PublishFailed as failed:
                (failure,) = failed.failures.values()
                if not isinstance(failure, Unpublishable):
                    raise
                with _about(row):
                    await self._charge_attempt(row, failure)
                if row.key is not None:
                    refused.add((row.topic, row.key))
                continue
            await self._mark_sent([row.seq])
            published += 1
        return published

    async def _charge_attempt(self, row: _Row, failure: Unpublishable) -> None:
        """Count a refusal against ``row``; park it at its last attempt, with the reason."""
        attempts = row.attempts + 1
        parks = attempts >= self.max_attempts
        changes: dict[str, Any] = {"attempts": attempts}
        if parks:
            changes |= {"parked_at": self.store.clock.now(), "park_reason": str(failure)}
        outbox = self.store.outbox
        async with self.store.writer.begin() as connection:
            await connection.execute(update(outbox).where(outbox.c.seq == row.seq).values(**changes))
        where = f"outbox row {row.seq} of {self.store.service} (topic {row.topic}, key {row.key!r})"
        if parks:
            OUTBOX_PARKED.labels(self.store.service).inc()
            log.error(
                "%s parked after %d refusals; the later rows of its key wait behind it until it is retried"
                " (python -m services outbox parked): %s",
                where,
                attempts,
                failure,
            )
        else:
            log.warning("%s refused by the bus (attempt %d of %d): %s", where, attempts, self.max_attempts, failure)

    async def _mark_sent(self, seqs: list[Any]) -> None:
        if not seqs:
            return
        async with self.store.writer.begin() as connection:
            await self._mark_sent_statement.run(connection, {"seqs": seqs, "sent_at": self.store.clock.now()})
        OUTBOX_PUBLISHED.labels(self.store.service).inc(len(seqs))

    async def purge_sent(self) -> int:
        """Delete rows published longer ago than the retention; the number deleted."""
        outbox = self.store.outbox
        cutoff = self.store.clock.now() - self.retention
        async with self.store.writer.begin() as connection:
            result = await connection.execute(delete(outbox).where(outbox.c.sent_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def _is_leader(self, *, force_check: bool) -> bool:
        if not self.store.on_postgresql:
            return True  # an embedded store belongs to exactly one process
        if self._leader_connection is not None:
            if force_check:
                await self._leader_connection.execute(text("SELECT 1"))
                await self._leader_connection.commit()
            return True
        connection = await self.store.engine.connect()
        try:
            lock = text("SELECT pg_try_advisory_lock(:key)")
            acquired = (await connection.execute(lock, {"key": self._lock_key})).scalar()
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        if acquired:
            self._leader_connection = connection
            if self.standby:  # taking over from another replica: its stall counts from now
                self.standby = False
                self._progressed_at = time.monotonic()
            return True
        await connection.close()
        self.standby = True
        return False

    async def _step_down(self) -> None:
        connection, self._leader_connection = self._leader_connection, None
        if connection is not None:
            try:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key})
                await connection.close()
            except Exception:
                # The connection is gone, and the lock went with it.
                await connection.invalidate()


@dataclass(frozen=True, slots=True)
class _Row:
    """An outbox row to publish."""

    seq: int
    topic: str
    key: bytes | None
    headers: list[list[str]]
    value: bytes
    attempts: int


def failure_kind(error: Exception) -> str:
    """The reason a failed publish is counted under: ``refused`` (the bus refuses a row for good),
    ``timeout`` or ``unavailable``; a partly failed publish by its first failure (the later ones are
    often rows held behind it)."""
    if isinstance(error, PublishFailed):
        error = error.failures[min(error.failures)]
    if isinstance(error, Unpublishable):
        return "refused"
    return "timeout" if isinstance(error, TimeoutError) else "unavailable"


def _about(row: _Row) -> AbstractContextManager[None]:
    """The log lines written about ``row`` name its case and event."""
    case_id = row.key.decode("utf-8", errors="replace") if row.key is not None else None
    event_id = next((item[1] for item in row.headers if item[0] == "ce_id" and len(item) == 2), None)
    return working_on(case_id=case_id, event_id=event_id)


def _message(row: _Row) -> Message:
    return Message(topic=row.topic, key=row.key, value=row.value, headers=headers_from_json(row.headers))
