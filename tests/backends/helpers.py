"""Helpers for the messaging contract tests: a test effect table, events, and log readers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, func, select

from shared.core.clock import SystemClock
from shared.core.ids import new_id
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseDispatched,
    CaseFiled,
    CategoryFamily,
    EventPayload,
    GridPlace,
    ReportSource,
)
from shared.events.envelope import Event
from shared.messaging.bus import Bus, Record
from shared.messaging.consumer import next_offsets
from shared.messaging.store import ServiceStore, Transaction
from shared.messaging.tables import service_metadata

CLOCK = SystemClock()


def effects_metadata() -> tuple[MetaData, Table]:
    """A service's metadata plus an ``effects`` table where test handlers leave their mark."""
    metadata = service_metadata()
    effects = Table(
        "effects",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("case_id", String(64), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", String(64), nullable=False),
    )
    return metadata, effects


def record_effect(effects: Table) -> Callable[[Transaction, Event], Awaitable[None]]:
    """A handler that inserts one row per application of an event."""

    async def handle(tx: Transaction, event: Event) -> None:
        await tx.connection.execute(
            effects.insert().values(case_id=event.subject, event_id=event.id, event_type=event.type)
        )

    return handle


async def effect_count(store: ServiceStore, effects: Table, event_id: UUID | None = None) -> int:
    """How many times handlers took effect (for one event, or in all)."""
    query = select(func.count()).select_from(effects)
    if event_id is not None:
        query = query.where(effects.c.event_id == event_id)
    async with store.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


def cancelled(case_id: str | UUID, source: str = "/citycase/closure") -> Event:
    """A small, valid event of the catalogue."""
    return _event(CaseCancelled(cancelled_by="shift-lead-1", reason="test"), case_id, source)


def filed(case_id: str) -> Event:
    """A ``case.filed`` event for ``case_id``."""
    payload = CaseFiled(
        case_number="2026-11-000001",
        category_code="0101",
        family=CategoryFamily.COMPONENT,
        source=ReportSource.INSPECTOR,
        place=GridPlace(cell_id="c1", community_id="m1", street_id="s1", district_id="d1"),
        filed_by="operator-1",
        reported_at=CLOCK.now(),
    )
    return _event(payload, case_id, "/citycase/intake")


def dispatched(case_id: str, attempt: int = 1) -> Event:
    """A ``case.dispatched`` event for ``case_id``."""
    payload = CaseDispatched(
        department_id="dept-sanitation", dispatched_by="dispatcher-1", handling_deadline=CLOCK.now(), attempt=attempt
    )
    return _event(payload, case_id, "/citycase/dispatch")


def accepted(case_id: str) -> Event:
    """A ``case.accepted`` event for ``case_id``."""
    return _event(CaseAccepted(department_id="dept-sanitation", accepted_by="user-1"), case_id, "/citycase/handling")


def _event(payload: EventPayload, case_id: str | UUID, source: str) -> Event:
    return Event.occurred(payload, subject=case_id, source=source, clock=CLOCK)


def new_case_id() -> str:
    """A fresh case id."""
    return str(new_id())


async def read_log(bus: Bus, topic: str, until: Callable[[list[Record]], bool], timeout_s: float = 30) -> list[Record]:
    """Read ``topic`` from the start with a fresh group until ``until(records)`` holds."""
    subscription = await bus.subscribe(f"reader-{new_id().hex}", [topic])
    records: list[Record] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not until(records):
                records.extend(await subscription.fetch(500, timeout_s=0.5))
    finally:
        await subscription.close()
    return records


async def consume(
    bus: Bus,
    runner_apply: Callable[[list[Record]], Awaitable[None]],
    group: str,
    topic: str,
    until: Callable[[list[Record]], bool],
    timeout_s: float = 30,
) -> list[Record]:
    """Fetch, apply and commit as a consumer group member until ``until(all records seen)``."""
    subscription = await bus.subscribe(group, [topic])
    seen: list[Record] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not until(seen):
                batch = await subscription.fetch(200, timeout_s=0.5)
                if batch:
                    await runner_apply(batch)
                    await subscription.commit(next_offsets(batch))
                    seen.extend(batch)
    finally:
        await subscription.close()
    return seen


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30, interval_s: float = 0.1) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not await condition():
            await asyncio.sleep(interval_s)
