"""Handling on its own: a case arrives as intake and dispatch would send it, then a department acts
on it; the tests read the task row and the events in the outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from handling.models import cases
from shared.core.auth import Principal, Role
from shared.core.errors import DomainError
from shared.core.ids import new_id
from shared.events.catalogue import (
    CaseDispatched,
    CaseFiled,
    CategoryFamily,
    GeoPoint,
    ReportReceived,
    ReportSource,
)
from tests.service.conftest import MONDAY_0900, ServiceFactory, ServiceUnderTest, point_in, principal

DEPARTMENT = "bureau-urban"
OTHER_DEPARTMENT = "bureau-housing"
CATEGORY = "01-01-01"
# The handling deadline a dispatcher set: three days after the harness's Monday morning.
DUE = MONDAY_0900 + timedelta(days=3)


@pytest.fixture
async def handling(service_under_test: ServiceFactory) -> ServiceUnderTest:
    """The handling service on a fresh embedded store."""
    return await service_under_test("handling")


def staff(department_id: str = DEPARTMENT) -> Principal:
    """Someone of the department's staff."""
    return principal(Role.DEPARTMENT, department_id=department_id)


async def reported_case(handling: ServiceUnderTest) -> UUID:
    """A case filed by intake, not dispatched yet; what handling emits from here on is fresh."""
    case_id = new_id()
    cell = handling.ctx.city.cells[0]
    lon, lat = point_in(handling.ctx.city, cell.id)
    await handling.deliver(
        ReportReceived(
            source=ReportSource.INSPECTOR,
            category_code=CATEGORY,
            description="a manhole cover is broken",
            point=GeoPoint(lon=lon, lat=lat),
            place=cell.place,
            reporter_id="I-1",
            photos=["report-photo"],
        ),
        case_id,
    )
    await handling.deliver(
        CaseFiled(
            case_number=f"2026-11-{case_id.int % 1_000_000:06d}",
            category_code=CATEGORY,
            family=CategoryFamily.COMPONENT,
            source=ReportSource.INSPECTOR,
            place=cell.place,
            filed_by="dispatcher-1",
            reported_at=handling.clock.now(),
        ),
        case_id,
    )
    await handling.emitted()
    return case_id


async def dispatch(
    handling: ServiceUnderTest,
    case_id: UUID,
    department_id: str = DEPARTMENT,
    deadline: datetime = DUE,
    attempt: int = 1,
) -> None:
    """Dispatch (派遣) sends the case to ``department_id``."""
    payload = CaseDispatched(
        department_id=department_id, dispatched_by="dispatcher-1", handling_deadline=deadline, attempt=attempt
    )
    await handling.deliver(payload, case_id)


async def dispatched_case(
    handling: ServiceUnderTest, department_id: str = DEPARTMENT, deadline: datetime = DUE
) -> UUID:
    """A case just dispatched to ``department_id``, in its inbox."""
    case_id = await reported_case(handling)
    await dispatch(handling, case_id, department_id, deadline)
    return case_id


async def refused(
    handling: ServiceUnderTest, case_id: UUID, error: type[DomainError], action: Awaitable[Any]
) -> DomainError:
    """``action`` fails with ``error``, leaving the task's row as it was and the outbox untouched."""
    await handling.emitted()
    before = dict(await handling.row(cases, case_id))
    with pytest.raises(error) as failure:
        await action
    assert dict(await handling.row(cases, case_id)) == before
    assert await handling.payloads() == []
    return failure.value
