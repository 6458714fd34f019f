"""Every read of the assessment service, and who may read what.

Everything is read from counters (one row per scope and period bucket), never from cases, so a
read costs the same whatever the city's history. Departments and inspectors see the rankings
(cities publish them) and their own figures; the command center sees everything.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.engine import RowMapping

from assessment import domain
from assessment.domain import COUNTERS, PeriodKind
from assessment.models import counters, positions
from assessment.stream import STREAM_CONSUMER
from shared.core.auth import Principal, Role
from shared.core.errors import InvalidInput, OutOfScope
from shared.service.context import ServiceContext

COMMAND_CENTER = (Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD)
READERS = (*COMMAND_CENTER, Role.DEPARTMENT, Role.INSPECTOR)
"""Who may read indicators, rankings and bulletins (``ensure_may_read`` narrows the figures)."""
LEADS = (Role.SHIFT_LEAD,)
"""Who may see the stream's positions and export every counter."""


def ensure_may_read(reader: Principal, scope_kind: str, scope_id: str) -> None:
    """``OutOfScope`` unless ``reader`` may see the figures of that scope: a department only its
    own, an inspector only their own, the command center any.
    """
    if reader.role is Role.DEPARTMENT and (scope_kind, scope_id) != ("department", reader.department_id):
        raise OutOfScope("a department reads its own figures; rankings are open to all")
    if reader.role is Role.INSPECTOR and (scope_kind, scope_id) != ("inspector", reader.inspector_id):
        raise OutOfScope("an inspector reads their own figures; rankings are open to all")


@dataclass(frozen=True)
class Period:
    """A period asked for: a bucket (day, week, month) or a custom range summed from days."""

    kind: str
    start: date
    end: date

    @classmethod
    def bucket(cls, kind: PeriodKind, day: date) -> Period:
        """The ``kind`` bucket that contains ``day``."""
        start = domain.period_start(kind, day)
        return cls(kind.value, start, domain.period_end(kind, start))

    @classmethod
    def custom(cls, start: date, end: date) -> Period:
        """Every day from ``start`` to ``end`` inclusive."""
        if end < start:
            raise InvalidInput("the range ends before it starts", {"from": start.isoformat(), "to": end.isoformat()})
        if (end - start).days > 366 * 5:
            raise InvalidInput(
                "a custom range may span at most five years", {"from": start.isoformat(), "to": end.isoformat()}
            )
        return cls("range", start, end)

    def to_json(self) -> dict[str, Any]:
        """The period as answered."""
        return {"kind": self.kind, "start": self.start, "end": self.end}


def period_asked(
    ctx: ServiceContext, name: str, day: date | None = None, start: date | None = None, end: date | None = None
) -> Period:
    """The period a request names: the ``name`` bucket holding ``day`` (default today, in the
    city's zone), or with ``name`` "range" the days from ``start`` to ``end``."""
    if name == "range":
        if start is None or end is None:
            raise InvalidInput("a range needs both 'from' and 'to'", {"period": name})
        return Period.custom(start, end)
    return Period.bucket(PeriodKind(name), day or _today(ctx))


def _today(ctx: ServiceContext) -> date:
    return ctx.clock.now().astimezone(zoneinfo.ZoneInfo(ctx.city.timezone)).date()


def _restrict(query: Select[Any], period: Period) -> Select[Any]:
    if period.kind == "range":
        return query.where(
            counters.c.period_kind == PeriodKind.DAY.value,
            counters.c.period_start >= period.start,
            counters.c.period_start <= period.end,
        )
    return query.where(counters.c.period_kind == period.kind, counters.c.period_start == period.start)


_SUMS = [func.coalesce(func.sum(counters.c[name]), 0).label(name) for name in COUNTERS]


async def indicators(ctx: ServiceContext, scope_kind: str, scope_id: str, period: Period) -> dict[str, int]:
    """The base counters of one scope in one period (a bucket row, or a sum of day rows)."""
    query = _restrict(
        select(*_SUMS).where(counters.c.scope_kind == scope_kind, counters.c.scope_id == scope_id), period
    )
    async with ctx.store.transaction() as tx:
        row = (await tx.connection.execute(query)).mappings().one()
    return {name: int(row[name]) for name in COUNTERS}


async def has_counters(ctx: ServiceContext, scope_kind: str, scope_id: str) -> bool:
    """Whether the stream ever counted anything for the scope, in any period."""
    query = select(counters.c.scope_id).where(counters.c.scope_kind == scope_kind, counters.c.scope_id == scope_id)
    async with ctx.store.transaction() as tx:
        return (await tx.connection.execute(query.limit(1))).first() is not None


async def scopes_of_kind(ctx: ServiceContext, scope_kind: str, period: Period) -> dict[str, dict[str, int]]:
    """The base counters of every scope of one kind in one period (what a ranking ranks)."""
    query = _restrict(
        select(counters.c.scope_id, *_SUMS).where(counters.c.scope_kind == scope_kind).group_by(counters.c.scope_id),
        period,
    )
    async with ctx.store.transaction() as tx:
        rows = (await tx.connection.execute(query)).mappings().all()
    return {row["scope_id"]: {name: int(row[name]) for name in COUNTERS} for row in rows}


async def backlog_by_department(ctx: ServiceContext, until: date) -> dict[str, int]:
    """Overdue open cases per department among cases filed in any month up to ``until``."""
    query = (
        select(counters.c.scope_id, func.sum(counters.c.overdue_open).label("overdue_open"))
        .where(
            counters.c.scope_kind == "department",
            counters.c.period_kind == PeriodKind.MONTH.value,
            counters.c.period_start <= until,
        )
        .group_by(counters.c.scope_id)
    )
    async with ctx.store.transaction() as tx:
        rows = (await tx.connection.execute(query)).all()
    return {scope_id: int(count) for scope_id, count in rows if count}


async def export_counters(ctx: ServiceContext, page: int = 5000) -> AsyncIterator[dict[str, Any]]:
    """Every counter row with a value, in key order, in the wire format of INDICATORS.md (zero
    values left out); read in pages so memory stays flat.
    """
    after: tuple[str, str, str, date] | None = None
    key = (counters.c.scope_kind, counters.c.scope_id, counters.c.period_kind, counters.c.period_start)
    while True:
        query = select(counters).order_by(*key).limit(page)
        if after is not None:
            query = query.where(tuple_(*key) > after)
        async with ctx.store.transaction() as tx:
            rows = (await tx.connection.execute(query)).mappings().all()
        for row in rows:
            line = _export_line(row)
            if line is not None:
                yield line
        if len(rows) < page:
            return
        last = rows[-1]
        after = (last["scope_kind"], last["scope_id"], last["period_kind"], last["period_start"])


def _export_line(row: RowMapping) -> dict[str, Any] | None:
    values = {name: row[name] for name in COUNTERS if row[name]}
    if not values:
        return None
    key = {
        "scope_kind": row["scope_kind"],
        "scope_id": row["scope_id"],
        "period_kind": row["period_kind"],
        "period_start": row["period_start"].isoformat(),
    }
    return {**key, "values": values}


async def stream_positions(ctx: ServiceContext) -> dict[str, int]:
    """How far the stream has applied the log, per partition (``topic/partition`` → next offset)."""
    async with ctx.store.transaction() as tx:
        rows = await tx.connection.execute(
            select(positions.c.topic, positions.c.partition, positions.c.next_offset).where(
                positions.c.consumer == STREAM_CONSUMER
            )
        )
        return {f"{topic}/{partition}": int(offset) for topic, partition, offset in rows}
