"""One service's use cases on their own: its handlers and reactions on the embedded store (a
migrated SQLite file), on a simulated clock, with the demo city. Tests assert the rows a use case
leaves and the events it puts in the outbox; no other service and no bus take part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Table, select
from sqlalchemy.engine import RowMapping

from services.runtime.registry import load_specs
from shared.city.calendar import OfficialYear, WorkingCalendar, load_calendar
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.clock import SimulatedClock
from shared.core.ids import new_id
from shared.core.photos import FilePhotoStore
from shared.core.settings import Mode, Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.events.catalogue import EventPayload
from shared.events.envelope import Event
from shared.messaging.binding import decode
from shared.messaging.bus import Record
from shared.messaging.consumer import ConsumerSpec
from shared.messaging.store import ServiceStore
from shared.messaging.tables import headers_from_json
from shared.service.context import Resources, ServiceContext

# A Monday morning in working hours, in the demo city's zone (Asia/Shanghai): 09:00 local.
MONDAY_0900 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
# The official days of 2027, which chinesecalendar does not know yet, as a notice might give them:
# New Year's Day and, say, Monday 4 January off (the provisional 2027 works that Monday).
NOTICE_2027 = OfficialYear(2027, frozenset({date(2027, 1, 1), date(2027, 1, 4)}), frozenset())


@pytest.fixture(scope="session")
def city() -> City:
    """The demo city, loaded once."""
    return load_city(Settings().city_dir)


@pytest.fixture(scope="session")
def calendar(city: City) -> WorkingCalendar:
    """The demo city's working calendar."""
    return load_calendar(city.calendar_file)


@dataclass
class ServiceUnderTest:
    """One service's context on a fresh embedded store, and what it has emitted so far."""

    ctx: ServiceContext
    clock: SimulatedClock
    consumers: Sequence[ConsumerSpec]
    _seen: int = field(default=0)

    @property
    def store(self) -> ServiceStore:
        return self.ctx.store

    async def outbox(self) -> list[Event]:
        """Every event the service has committed to its outbox, in order."""
        outbox = self.store.outbox
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(select(outbox).order_by(outbox.c.seq))).mappings().all()
        return [
            decode(Record(row["topic"], 0, n, row["key"], row["value"], headers_from_json(row["headers"])))
            for n, row in enumerate(rows)
        ]

    async def emitted(self) -> list[Event]:
        """The events committed since the last call (or since the start)."""
        events = await self.outbox()
        fresh, self._seen = events[self._seen :], len(events)
        return fresh

    async def payloads(self) -> list[EventPayload]:
        """The payloads of ``emitted()``."""
        return [event.data for event in await self.emitted()]

    async def deliver(self, payload: EventPayload, case_id: UUID, *, source: str = "elsewhere") -> Event:
        """Hand the service an event of another service, as its consumer would, in a transaction
        of its own; the event."""
        event = Event.occurred(payload, subject=case_id, source=f"/citycase/{source}", clock=self.clock)
        await self.deliver_events([event])
        return event

    async def deliver_events(self, events: Sequence[Event]) -> None:
        """Apply ``events`` as the service's consumers would (its batch handler when it has one)."""
        for spec in self.consumers:
            wanted = [event for event in events if event.type in spec.handlers]
            if not wanted:
                continue
            async with self.store.transaction() as tx:
                if spec.apply_batch is not None:
                    await spec.apply_batch(tx, wanted)
                else:
                    for event in wanted:
                        await spec.handlers[event.type](tx, event)

    async def rows(self, table: Table, **where: Any) -> list[RowMapping]:
        """The rows of ``table`` whose columns equal ``where``."""
        query = select(table).where(*(table.c[name] == value for name, value in where.items()))
        async with self.store.engine.connect() as connection:
            return list((await connection.execute(query)).mappings().all())

    async def row(self, table: Table, row_id: UUID) -> RowMapping:
        """The row of ``table`` with id ``row_id``."""
        (found,) = await self.rows(table, id=row_id)
        return found


ServiceFactory = Callable[[str], Awaitable[ServiceUnderTest]]


@pytest.fixture
async def service_under_test(tmp_path: Path, city: City, calendar: WorkingCalendar) -> AsyncIterator[ServiceFactory]:
    """``await service_under_test("intake")``: the named service on a fresh embedded store."""
    opened: list[ServiceStore] = []

    async def open_service(name: str) -> ServiceUnderTest:
        (spec,) = load_specs([name])
        settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path)
        clock = SimulatedClock(MONDAY_0900)
        engine = create_engine(settings.database_url(name), pool_size=2)
        await upgrade_to_head(name, engine)
        store = ServiceStore(name, engine, spec.metadata, clock=clock, case_events_topic=settings.topic_case_events)
        opened.append(store)
        ctx = ServiceContext(
            service=name,
            settings=settings,
            clock=clock,
            store=store,
            city=city,
            calendar=calendar,
            photos=FilePhotoStore(tmp_path / "photos"),
            resources=Resources(spec.resources(store, settings)),
        )
        return ServiceUnderTest(ctx, clock, spec.consumers(ctx))

    yield open_service
    for store in opened:
        await store.engine.dispose()


def with_own_calendar(sut: ServiceUnderTest, **settings: Any) -> ServiceUnderTest:
    """``sut`` with a calendar of its own, which a test may teach an official year without the
    other tests seeing it, and ``settings`` changed (e.g. a short ``timer_interval_seconds``)."""
    ctx = replace(
        sut.ctx,
        calendar=load_calendar(sut.ctx.city.calendar_file),
        settings=sut.ctx.settings.model_copy(update=settings),
    )
    (spec,) = load_specs([ctx.service])
    return ServiceUnderTest(ctx, sut.clock, spec.consumers(ctx))


def principal(role: Role, username: str | None = None, **scope: str) -> Principal:
    """A caller of ``role`` (``department_id=...`` or ``inspector_id=...`` as its scope)."""
    return Principal(username=username or f"{role.value}-{new_id().hex[-6:]}", role=role, name=role.value, **scope)


def point_in(city: City, cell_id: str | None = None) -> tuple[float, float]:
    """A WGS-84 point inside ``cell_id`` (default: the city's first cell)."""
    polygon = city.grid.polygon(cell_id or city.cells[0].id)
    lon, lat = polygon.representative_point().coords[0]
    return lon, lat


def hours(count: float) -> timedelta:
    """A span of ``count`` hours."""
    return timedelta(hours=count)
