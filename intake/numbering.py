"""Case numbers (案件编号): a month's numbers handed out from blocks reserved ahead, so that
filings do not wait for one another.

One ``CaseNumbers`` per service, made by the spec's resources when the service starts and found
with ``ctx.resources.get(CaseNumbers)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update

from intake import domain
from intake.models import case_number_counters
from shared.messaging.store import ServiceStore


def period_of(at: datetime, timezone: str) -> str:
    """The numbering period of an instant: its month (YYYY-MM) in the city's time zone."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


@dataclass
class CaseNumber:
    """A number kept aside for a transaction that may file a case."""

    period: str
    sequence: int
    used: bool = False

    @property
    def text(self) -> str:
        """The case number as cases carry it (not yet taken)."""
        return domain.case_number(self.period, self.sequence)

    def use(self) -> str:
        """The case number, now taken by the filing."""
        self.used = True
        return self.text


class CaseNumbers:
    """Hands out a month's case numbers from blocks reserved ahead, before the filing's own
    transaction begins.

    Taken from the counter row inside the filing's transaction, a number kept the row locked until
    that transaction committed, so every filing waited for the one before: intake ran 60
    reports/s however many came. A block is reserved once per ``BLOCK`` filings, in a short
    transaction of its own (never nested in another, which could wait for a pool connection held
    by a filing that waits for the block). Numbers kept aside and not used are released, to be
    handed out again. The price: numbers follow filing order only within a process, and a process
    that stops leaves the rest of its block unused, as a database sequence would.
    """

    BLOCK = 50

    def __init__(self, store: ServiceStore) -> None:
        self.store = store
        self._free: dict[str, list[int]] = {}
        self._next: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._reserving = asyncio.Lock()

    async def take(self, period: str) -> CaseNumber:
        """The next number of ``period`` (YYYY-MM)."""
        async with self._reserving:
            free = self._free.get(period)
            if free:
                return CaseNumber(period, free.pop())
            if self._next.get(period, 1) > self._last.get(period, 0):
                last = await _reserve(self.store, period, self.BLOCK)
                self._next[period], self._last[period] = last - self.BLOCK + 1, last
            sequence = self._next[period]
            self._next[period] = sequence + 1
            return CaseNumber(period, sequence)

    def release(self, number: CaseNumber) -> None:
        """A number kept aside that no committed filing took: handed out again."""
        self._free.setdefault(number.period, []).append(number.sequence)

    @asynccontextmanager
    async def kept_aside(self, period: str) -> AsyncIterator[CaseNumber]:
        """A number of ``period`` kept aside for the transaction inside this block; released
        unless a filing used it.
        """
        number = await self.take(period)
        try:
            yield number
        finally:
            # A number a filing used is never handed out again, even when its transaction failed:
            # the commit may have gone through before the error (a connection lost while
            # committing), and a second case with it would fail on the unique case number. A gap.
            if not number.used:
                self.release(number)


async def _reserve(store: ServiceStore, period: str, count: int) -> int:
    """Move the month's counter on by ``count`` in a transaction of its own; the last number
    reserved. Insert-or-increment: two concurrent reservations never get the same numbers.
    """
    async with store.writer.begin() as connection:
        await connection.execute(
            store.insert_ignoring_duplicates(case_number_counters, "period").values(period=period, last=0)
        )
        result = await connection.execute(
            update(case_number_counters)
            .where(case_number_counters.c.period == period)
            .values(last=case_number_counters.c.last + count)
            .returning(case_number_counters.c.last)
        )
        return int(result.scalar_one())
