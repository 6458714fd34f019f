"""Dispatch on its own: a filed case arrives as intake's ``case.filed``, the other services' facts
through dispatch's real consumer, and the command center's commands through the handlers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from dispatch.models import assignments, cases
from shared.core.auth import Principal, Role
from shared.core.ids import new_id
from shared.events.catalogue import CaseFiled, CategoryFamily, GridPlace, ReportSource
from tests.service.conftest import MONDAY_0900, ServiceFactory, ServiceUnderTest, principal

# A storm drain grate (雨水箅子): working time, 420 working minutes to handle — one working day —
# and a city-wide rule sends it to the drainage company.
ROUTED = "01-01-12"
ROUTED_TO = "co-drainage"
ROUTED_BY = "city-01-01-12"
# A manhole cover of unknown owner (无主井盖): by design no routing rule names an owner anywhere.
UNROUTED = "01-01-11"
# Dispatched Monday 09:00 in working hours, a case of ROUTED is due Tuesday 09:00.
DUE = MONDAY_0900 + timedelta(days=1)

DISPATCHER: Principal = principal(Role.DISPATCHER, "dispatcher-1")
LEAD: Principal = principal(Role.SHIFT_LEAD, "lead-1")

Snapshot = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture
async def dispatch_service(service_under_test: ServiceFactory) -> ServiceUnderTest:
    """The dispatch service on a fresh store, its clock at Monday 09:00."""
    return await service_under_test("dispatch")


async def file_case(
    sut: ServiceUnderTest, category_code: str = ROUTED, *, self_handled: bool = False, drain: bool = True
) -> UUID:
    """A case filed by intake in the city's first cell, as dispatch's consumer receives it; its id.
    ``drain`` forgets the events dispatch emitted in reaction."""
    cell = sut.ctx.city.cells[0]
    place = GridPlace(
        cell_id=cell.id, community_id=cell.community_id, street_id=cell.street_id, district_id=cell.district_id
    )
    case_id = new_id()
    filed = CaseFiled(
        case_number=f"2026-11-{case_id.int % 1_000_000:06d}",
        category_code=category_code,
        family=CategoryFamily.COMPONENT,
        source=ReportSource.INSPECTOR,
        place=place,
        filed_by="operator-1",
        reported_at=sut.clock.now(),
        dispatch_deadline=sut.clock.now() + timedelta(minutes=30),
        self_handled=self_handled,
    )
    await sut.deliver(filed, case_id, source="intake")
    if drain:
        await sut.emitted()
    return case_id


async def case_row(sut: ServiceUnderTest, case_id: UUID) -> dict[str, Any]:
    """Dispatch's row of the case."""
    return dict(await sut.row(cases, case_id))


async def attempts(sut: ServiceUnderTest, case_id: UUID) -> list[dict[str, Any]]:
    """The case's dispatch attempts, in order."""
    rows = await sut.rows(assignments, case_id=case_id)
    return sorted((dict(row) for row in rows), key=lambda row: row["attempt"])


async def snapshot(sut: ServiceUnderTest) -> Snapshot:
    """Every row of dispatch's two tables."""
    every_case = sorted((dict(row) for row in await sut.rows(cases)), key=lambda row: row["id"])
    every_attempt = sorted(
        (dict(row) for row in await sut.rows(assignments)), key=lambda r: (r["case_id"], r["attempt"])
    )
    return every_case, every_attempt


async def assert_refusal_left_no_trace(sut: ServiceUnderTest, before: Snapshot) -> None:
    """A refused command or an ignored fact wrote nothing and emitted nothing."""
    assert await snapshot(sut) == before
    assert await sut.emitted() == []


def at(days: float = 0, hours: float = 0) -> datetime:
    """An instant after Monday 09:00 (Shanghai)."""
    return MONDAY_0900 + timedelta(days=days, hours=hours)
