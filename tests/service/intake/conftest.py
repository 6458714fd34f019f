"""What intake's use-case tests share: the service on a fresh store, and reports to send it."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import pytest

from intake.handlers import NewReport, receive_report
from shared.core.auth import Principal, Role
from shared.db.driver import Row
from shared.events.catalogue import ReportSource
from tests.service.conftest import ServiceFactory, ServiceUnderTest, point_in, principal

CELL = "990102001001001"  # patrolled by insp-001
OTHER_CELL = "990102001002001"  # patrolled by insp-003
URGENT = "01-01-04"  # a missing manhole cover: calendar time, 10 minutes to file
ORDINARY = "02-05-01"  # working time


@pytest.fixture
async def intake(service_under_test: ServiceFactory) -> ServiceUnderTest:
    """The intake service on a fresh embedded store."""
    return await service_under_test("intake")


async def send(
    intake: ServiceUnderTest,
    source: ReportSource,
    *,
    cell: str = CELL,
    category: str = URGENT,
    reporter_id: str | None = None,
    client_ref: str | None = None,
    external_ref: str | None = None,
    self_handled: bool = False,
    resent: bool = False,
) -> Row:
    """A report from ``source`` in ``cell``; its row (the report must be new, or when ``resent``
    a resend answered with the first report)."""
    lon, lat = point_in(intake.ctx.city, cell)
    if reporter_id is None and source is ReportSource.INSPECTOR:
        reporter_id = intake.ctx.city.inspector_for(cell).id
    new = NewReport(
        source,
        category,
        "a problem",
        lon,
        lat,
        reporter_id=reporter_id,
        client_ref=client_ref,
        external_ref=external_ref,
        self_handled=self_handled,
    )
    row, created = await receive_report(intake.ctx, new)
    assert created is not resent
    return row


def inspector(inspector_id: str) -> Principal:
    """The inspector ``inspector_id`` as a caller."""
    return principal(Role.INSPECTOR, f"user-{inspector_id}", inspector_id=inspector_id)


def ids(rows: Sequence[Row]) -> set[UUID]:
    """The ids of ``rows``."""
    return {row["id"] for row in rows}
