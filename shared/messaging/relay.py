"""The outbox relay: publishes committed outbox rows to the bus, in order, then marks them sent.

At-least-once by construction: a relay that dies after publishing and before marking publishes
the same rows again, and consumers drop the duplicates through their inbox. One relay per service
publishes at a time (a PostgreSQL advisory lock elects it) so ``seq`` order is publication order.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.core.metrics import OUTBOX_PUBLISHED
from shared.messaging.bus import Bus, Message
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
    ) -> None:
        self.store = store
        self.bus = bus
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention = retention
        self._lock_key = zlib.crc32(f"citycase.outbox.{store.service}".encode())
        self._leader_connection: AsyncConnection | None = None

    async def run(self) -> None:
        """Relay forever: publish what is there, wait for more, back off while the bus is down."""
        backoff = self.poll_seconds
        loop = asyncio.get_running_loop()
        last_check = last_purge = loop.time()
        try:
            while True:
                try:
                    check = loop.time() - last_check > _LEADERSHIP_CHECK_S
                    if check:
                        last_check = loop.time()
                    if not await self._is_leader(force_check=check):
                        await asyncio.sleep(_LEADERSHIP_CHECK_S)
                        continue
                    published = await self.relay_once()
                    if loop.time() - last_purge > _PURGE_EVERY_S:
                        await self.purge_sent()
                        last_purge = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning(
                        "outbox relay of %s failed; retrying in %.1fs", self.store.service, backoff, exc_info=True
                    )
                    await self._step_down()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                backoff = self.poll_seconds
                if published < self.batch_size:
                    await self.store.wait_for_outbox(self.poll_seconds)
        finally:
            await self._step_down()

    async def relay_once(self) -> int:
        """Publish the oldest unsent rows (one batch) and mark them sent; the number published."""
        outbox = self.store.outbox
        async with self.store.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(outbox.c.seq, outbox.c.topic, outbox.c.key, outbox.c.headers, outbox.c.value)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        await self.bus.publish(
            [Message(topic=r.topic, key=r.key, value=r.value, headers=headers_from_json(r.headers)) for r in rows]
        )
        await self._mark_sent([r.seq for r in rows])
        OUTBOX_PUBLISHED.labels(self.store.service).inc(len(rows))
        return len(rows)

    async def _mark_sent(self, seqs: list[Any]) -> None:
        outbox = self.store.outbox
        async with self.store.writer.begin() as connection:
            await connection.execute(
                update(outbox).where(outbox.c.seq.in_(seqs)).values(sent_at=self.store.clock.now())
            )

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
            return True
        await connection.close()
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
