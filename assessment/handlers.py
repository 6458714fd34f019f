"""The assessment service's use cases: apply a batch of the case event log to the counters, and
read indicators, rankings and bulletins back from them.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import RowMapping

from assessment import domain
from assessment.domain import COUNTERS, Attribution, CaseState, PeriodKind
from assessment.models import case_states, counters, positions
from shared.city.model import City
from shared.core.errors import InvalidInput
from shared.events.envelope import Event
from shared.messaging.store import ServiceStore, Transaction
from shared.service.context import ServiceContext

STREAM_CONSUMER = "assessment.indicators"


def attribution(city: City) -> Attribution:
    """The city's answers to what events leave out: a category's family, a cell's inspector."""

    def inspector_of(cell_id: str) -> str | None:
        try:
            return city.inspector_for(cell_id).id
        except KeyError:
            return None

    def family_of(code: str) -> str:
        try:
            return city.category(code).family.value
        except KeyError:
            return "unknown"

    return Attribution(family_of=family_of, inspector_of=inspector_of)


class Stream:
    """Applies batches of case events to per-case states and counters (one transaction each)."""

    def __init__(self, city: City) -> None:
        self.zone = zoneinfo.ZoneInfo(city.timezone)
        self.attribution = attribution(city)

    async def apply(self, tx: Transaction, events: Sequence[Event]) -> None:
        """Turn ``events`` into counter deltas and new case states, written in ``tx``."""
        by_case: dict[UUID, list[Event]] = {}
        for event in events:
            by_case.setdefault(UUID(event.subject), []).append(event)
        rows = await tx.session.execute(
            select(case_states.c.case_id, case_states.c.state).where(case_states.c.case_id.in_(list(by_case)))
        )
        states = {case_id: CaseState.from_json(state) for case_id, state in rows}
        changes: list[tuple[domain.ContributionKey, list[int]]] = []
        changed: dict[UUID, CaseState] = {}
        for case_id, case_events in by_case.items():
            state = states.get(case_id) or CaseState()
            before = domain.contribution(state, self.zone)
            applied = [domain.apply(state, event, self.attribution) for event in case_events]
            if not any(applied):
                continue
            changes.extend(domain.difference(domain.contribution(state, self.zone), before))
            changed[case_id] = state
        await self._add_to_counters(tx, domain.to_periods(changes))
        await self._save_states(tx, changed)

    async def _add_to_counters(self, tx: Transaction, rows: dict[domain.RowKey, list[int]]) -> None:
        if not rows:
            return
        # A fixed order of row locks: instances sharing the city-wide rows wait, never deadlock.
        ordered = sorted(rows.items())
        if tx.on_postgresql:
            # One statement with a column array each: a batch touches thousands of rows, and
            # binding them one by one cost more than the database's work on them.
            keys = list(zip(*(key for key, _ in ordered), strict=True))
            values = list(zip(*(vector for _, vector in ordered), strict=True))
            parameters = dict(zip(("kinds", "ids", "periods", "starts"), keys, strict=True))
            parameters.update({name: values[i] for i, name in enumerate(COUNTERS)})
            await tx.session.execute(_ADD_TO_COUNTERS, {name: list(column) for name, column in parameters.items()})
            return
        insert = sqlite.insert(counters)
        statement = insert.on_conflict_do_update(
            index_elements=["scope_kind", "scope_id", "period_kind", "period_start"],
            set_={name: counters.c[name] + insert.excluded[name] for name in COUNTERS},
        )
        values_list = [
            {
                "scope_kind": kind,
                "scope_id": scope_id,
                "period_kind": period_kind,
                "period_start": start,
                **dict(zip(COUNTERS, vector, strict=True)),
            }
            for (kind, scope_id, period_kind, start), vector in ordered
        ]
        await tx.session.execute(statement, values_list)

    async def _save_states(self, tx: Transaction, states: dict[UUID, CaseState]) -> None:
        if not states:
            return
        ordered = sorted(states.items())
        if tx.on_postgresql:
            await tx.session.execute(
                _SAVE_STATES,
                {"ids": [case_id for case_id, _ in ordered], "states": [state.to_text() for _, state in ordered]},
            )
            return
        insert = sqlite.insert(case_states)
        statement = insert.on_conflict_do_update(index_elements=["case_id"], set_={"state": insert.excluded.state})
        await tx.session.execute(
            statement, [{"case_id": case_id, "state": state.to_json()} for case_id, state in ordered]
        )


_ADD_TO_COUNTERS = text(
    f"""
    INSERT INTO counters (scope_kind, scope_id, period_kind, period_start, {", ".join(COUNTERS)})
    SELECT * FROM unnest(
        CAST(:kinds AS text[]), CAST(:ids AS text[]), CAST(:periods AS text[]), CAST(:starts AS date[]),
        {", ".join(f"CAST(:{name} AS bigint[])" for name in COUNTERS)}
    ) AS change ORDER BY 1, 2, 3, 4
    ON CONFLICT (scope_kind, scope_id, period_kind, period_start) DO UPDATE SET
        {", ".join(f"{name} = counters.{name} + excluded.{name}" for name in COUNTERS)}
    """
)
_SAVE_STATES = text(
    """
    INSERT INTO case_states (case_id, state)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:states AS json[])) AS saved ORDER BY 1
    ON CONFLICT (case_id) DO UPDATE SET state = excluded.state
    """
)


async def forget_everything(store: ServiceStore) -> None:
    """Empty the stream's state, counters and positions, so the next run replays the whole log."""
    async with store.transaction() as tx:
        if tx.on_postgresql:
            # Deleting millions of rows would leave them all to vacuum, under the replay's writes.
            await tx.session.execute(text("TRUNCATE counters, case_states"))
        else:
            for table in (counters, case_states):
                await tx.session.execute(delete(table))
        await tx.session.execute(delete(positions).where(positions.c.consumer == STREAM_CONSUMER))


# --- reading ---------------------------------------------------------------------------------


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
        row = (await tx.session.execute(query)).mappings().one()
    return {name: int(row[name]) for name in COUNTERS}


async def scopes_of_kind(ctx: ServiceContext, scope_kind: str, period: Period) -> dict[str, dict[str, int]]:
    """The base counters of every scope of one kind in one period (what a ranking ranks)."""
    query = _restrict(
        select(counters.c.scope_id, *_SUMS).where(counters.c.scope_kind == scope_kind).group_by(counters.c.scope_id),
        period,
    )
    async with ctx.store.transaction() as tx:
        rows = (await tx.session.execute(query)).mappings().all()
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
        rows = (await tx.session.execute(query)).all()
    return {scope_id: int(count) for scope_id, count in rows if count}


async def export_counters(ctx: ServiceContext, page: int = 5000) -> AsyncIterator[RowMapping]:
    """Every non-empty counter row, in key order, read in pages so memory stays flat."""
    after: tuple[str, str, str, date] | None = None
    key = (counters.c.scope_kind, counters.c.scope_id, counters.c.period_kind, counters.c.period_start)
    while True:
        query = select(counters).order_by(*key).limit(page)
        if after is not None:
            query = query.where(tuple_(*key) > after)
        async with ctx.store.transaction() as tx:
            rows = (await tx.session.execute(query)).mappings().all()
        for row in rows:
            yield row
        if len(rows) < page:
            return
        last = rows[-1]
        after = (last["scope_kind"], last["scope_id"], last["period_kind"], last["period_start"])


async def stream_positions(ctx: ServiceContext) -> dict[str, int]:
    """How far the stream has applied the log, per partition (``topic/partition`` → next offset)."""
    async with ctx.store.transaction() as tx:
        rows = await tx.session.execute(
            select(positions.c.topic, positions.c.partition, positions.c.next_offset).where(
                positions.c.consumer == STREAM_CONSUMER
            )
        )
        return {f"{topic}/{partition}": int(offset) for topic, partition, offset in rows}
