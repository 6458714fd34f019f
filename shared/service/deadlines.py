"""Deadlines counted on a provisional calendar year are counted again when the calendar learns
an official year: a service worker runs the service's recompute once at start (a year may have
been loaded, or chinesecalendar upgraded, while it was down) and whenever the calendar's
``generation`` changes after that; the recompute walks the service's rows with such deadlines.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Select
from sqlalchemy.engine import RowMapping

from shared.messaging.store import Transaction
from shared.service.context import ServiceContext
from shared.service.timer import run_timer

log = logging.getLogger(__name__)

Recompute = Callable[[ServiceContext], Awaitable[int]]


async def recompute_on_official_years(ctx: ServiceContext, recompute: Recompute) -> None:
    """Run ``recompute`` (which answers how many deadlines it recomputed) at start and after each
    official year the calendar learns, looking every ``timer_interval_seconds``; a failed run is
    logged and tried again at the next look."""
    done: int | None = None

    async def look() -> int:
        nonlocal done
        generation = ctx.calendar.generation
        if generation != done:
            recomputed = await recompute(ctx)
            done = generation
            if recomputed:
                log.info("%s recomputed %d provisional deadlines", ctx.service, recomputed)
        return 0

    await run_timer(f"{ctx.service} provisional deadlines", look, ctx.settings.timer_interval_seconds)


async def recompute_rows(
    ctx: ServiceContext,
    query: Select[Any],
    id_column: Column[UUID],
    recompute: Callable[[Transaction, RowMapping], Awaitable[int]],
    batch: int = 500,
) -> int:
    """Call ``recompute`` (which answers how many deadlines of the row it recomputed) on every row
    of ``query``, in id order, a batch per transaction; the total. On PostgreSQL each batch locks
    its rows and skips those another replica holds, so each deadline is recomputed, and told, once.
    """
    total = 0
    after: UUID | None = None
    while True:
        async with ctx.store.transaction() as tx:
            page = query.order_by(id_column).limit(batch)
            if after is not None:
                page = page.where(id_column > after)
            if tx.on_postgresql:
                page = page.with_for_update(skip_locked=True)
            rows = (await tx.connection.execute(page)).mappings().all()
            for row in rows:
                total += await recompute(tx, row)
        if len(rows) < batch:
            return total
        after = rows[-1][id_column.name]
