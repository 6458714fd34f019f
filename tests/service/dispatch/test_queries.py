"""Dispatch's reads: the queues the command center works from, one case, and the export."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch import handlers, queries
from dispatch.domain import DispatchStatus
from shared.core.errors import NotFound
from shared.core.ids import new_id
from shared.events.catalogue import CaseReturned, ExtensionRequested
from tests.service.conftest import MONDAY_0900, ServiceUnderTest
from tests.service.dispatch.conftest import DISPATCHER, DUE, ROUTED_TO, UNROUTED, file_case


async def test_the_queues_list_waiting_cases_oldest_first(dispatch_service: ServiceUnderTest) -> None:
    first = await file_case(dispatch_service, UNROUTED)
    dispatch_service.clock.advance(timedelta(minutes=1))
    second = await file_case(dispatch_service, UNROUTED)
    routed = await file_case(dispatch_service)
    await dispatch_service.deliver(
        CaseReturned(department_id=ROUTED_TO, returned_by="officer-1", reason="not ours"), routed
    )

    coordination = (await queries.queue(dispatch_service.ctx, DispatchStatus.COORDINATION, 100)).rows
    assert [row["id"] for row in coordination] == [first, second]
    assert [row["id"] for row in (await queries.queue(dispatch_service.ctx, DispatchStatus.COORDINATION, 1)).rows] == [
        first
    ]
    assert [row["id"] for row in (await queries.queue(dispatch_service.ctx, DispatchStatus.RETURNED, 100)).rows] == [
        routed
    ]


async def test_pending_extensions_list_the_held_requests(dispatch_service: ServiceUnderTest) -> None:
    waiting = await file_case(dispatch_service)
    await file_case(dispatch_service)
    request = ExtensionRequested(
        department_id=ROUTED_TO, requested_by="officer-1", requested_deadline=DUE + timedelta(days=1), reason="x"
    )
    await dispatch_service.deliver(request, waiting)

    assert [row["id"] for row in (await queries.pending_extensions(dispatch_service.ctx, 100)).rows] == [waiting]


async def test_one_case_or_404(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    assert (await queries.get_case(dispatch_service.ctx, case_id))["department_id"] == ROUTED_TO
    with pytest.raises(NotFound):
        await queries.get_case(dispatch_service.ctx, new_id())


async def test_the_export_pages_cases_in_id_order_with_their_attempts(dispatch_service: ServiceUnderTest) -> None:
    queued = await file_case(dispatch_service, UNROUTED)
    twice = await file_case(dispatch_service)
    await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, twice, "sanitation")

    page = await queries.export_page(dispatch_service.ctx, None, 10)

    assert [row["id"] for row, _ in page] == sorted([queued, twice])
    by_id = {row["id"]: attempts for row, attempts in page}
    assert by_id[queued] == []
    assert by_id[twice] == [
        {"attempt": 1, "department_id": ROUTED_TO, "dispatched_at": MONDAY_0900, "returned_at": None},
        {"attempt": 2, "department_id": "sanitation", "dispatched_at": MONDAY_0900, "returned_at": None},
    ]
    first_id = page[0][0]["id"]
    assert [row["id"] for row, _ in await queries.export_page(dispatch_service.ctx, first_id, 10)] == [page[1][0]["id"]]
    assert len(await queries.export_page(dispatch_service.ctx, None, 1)) == 1
