"""A persisted timer as a service worker: the deadlines live in the service's tables, and a loop
looks at them now and then, so a restart loses none (dispatch's handling deadlines, closure's
check deadlines).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, func, select

from shared.core.metrics import TIMER_DUE, TIMER_OLDEST_DUE_SECONDS
from shared.messaging.store import ServiceStore

log = logging.getLogger(__name__)


async def run_timer(name: str, tick: Callable[[], Awaitable[int]], interval_seconds: float) -> None:
    """Call ``tick`` (which reports what has come due and answers how many) until it finds
    nothing, then wait ``interval_seconds``, forever; a failed tick is logged and tried again at
    the next one."""
    while True:
        try:
            while await tick() > 0:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s failed; retrying", name, exc_info=True)
        await asyncio.sleep(interval_seconds)


@dataclass(frozen=True)
class Timer:
    """What a persisted timer reports, for the gauges of its backlog: the rows of ``table`` that
    ``due(now)`` selects (deadline passed, not reported yet), the same rule its ticks use."""

    name: str
    table: Table
    deadline: ColumnElement[datetime]
    due: Callable[[datetime], Sequence[ColumnElement[bool]]]


async def refresh_timer_gauges(store: ServiceStore, timers: Sequence[Timer]) -> None:
    """Read how many deadlines each timer has due and not reported, and how long the earliest has
    been due, into the gauges: a timer that stopped shows a growing backlog."""
    now = store.clock.now()
    async with store.engine.connect() as connection:
        for timer in timers:
            query = select(func.count(), func.min(timer.deadline)).select_from(timer.table).where(*timer.due(now))
            count, earliest = (await connection.execute(query)).one()
            waited = max(now - earliest, timedelta(0)) if earliest is not None else timedelta(0)
            TIMER_DUE.labels(store.service, timer.name).set(count)
            TIMER_OLDEST_DUE_SECONDS.labels(store.service, timer.name).set(waited.total_seconds())
