"""A filed case (立案) reaches dispatch: routed by the city's rules, or queued for coordination."""

from __future__ import annotations

from datetime import datetime

import pytest

from dispatch import handlers
from dispatch.models import cases
from shared.core.errors import DependencyMissing
from shared.events.catalogue import CaseDispatched, CaseQueuedForCoordination
from tests.service.conftest import MONDAY_0900, ServiceUnderTest
from tests.service.dispatch.conftest import (
    DISPATCHER,
    DUE,
    ROUTED,
    ROUTED_BY,
    ROUTED_TO,
    UNROUTED,
    assert_refusal_left_no_trace,
    attempts,
    case_row,
    file_case,
    snapshot,
)


async def test_a_case_a_rule_routes_is_dispatched_with_its_working_time_deadline(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service, ROUTED, drain=False)

    row = await case_row(dispatch_service, case_id)
    assert row["status"] == "dispatched"
    assert row["department_id"] == ROUTED_TO
    assert row["rule_id"] == ROUTED_BY
    assert (row["attempt"], row["accepted"], row["supervision_level"]) == (1, False, 0)
    assert row["dispatched_at"] == MONDAY_0900
    assert row["handling_deadline"] == DUE  # 420 working minutes from Monday 09:00
    assert row["filed_at"] == MONDAY_0900
    assert row["category_code"] == ROUTED
    assert row["cell_id"] == dispatch_service.ctx.city.cells[0].id
    assert [
        (a["attempt"], a["department_id"], a["dispatched_at"], a["returned_at"])
        for a in await attempts(dispatch_service, case_id)
    ] == [(1, ROUTED_TO, MONDAY_0900, None)]
    (event,) = await dispatch_service.emitted()
    assert event.data == CaseDispatched(
        department_id=ROUTED_TO, dispatched_by="routing-rules", handling_deadline=DUE, attempt=1, rule_id=ROUTED_BY
    )
    assert event.subject == str(case_id)
    assert event.time == row["dispatched_at"]


async def test_a_case_no_rule_names_an_owner_waits_for_coordination(dispatch_service: ServiceUnderTest) -> None:
    # No routing rule in the demo city covers a manhole cover of unknown owner (01-01-11).
    case_id = await file_case(dispatch_service, UNROUTED, drain=False)

    row = await case_row(dispatch_service, case_id)
    assert row["status"] == "coordination"
    assert (row["department_id"], row["handling_deadline"], row["attempt"], row["rule_id"]) == (None, None, 0, None)
    assert await attempts(dispatch_service, case_id) == []
    assert await dispatch_service.payloads() == [
        CaseQueuedForCoordination(reason="no routing rule names an owner (权属不清)")
    ]


async def test_a_case_handled_on_the_spot_never_reaches_dispatch(dispatch_service: ServiceUnderTest) -> None:
    before = await snapshot(dispatch_service)
    await file_case(dispatch_service, ROUTED, self_handled=True, drain=False)
    await assert_refusal_left_no_trace(dispatch_service, before)
    assert await dispatch_service.rows(cases) == []


async def test_a_year_without_calendar_data_is_a_503_and_changes_nothing(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service, ROUTED)  # counted in working time
    before = await snapshot(dispatch_service)
    dispatch_service.clock.set(datetime(2199, 11, 4, 1, 0, tzinfo=MONDAY_0900.tzinfo))

    with pytest.raises(DependencyMissing, match="2199"):
        await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "sanitation")

    await assert_refusal_left_no_trace(dispatch_service, before)


async def test_a_rule_that_cannot_count_the_deadline_leaves_the_case_to_a_dispatcher(
    dispatch_service: ServiceUnderTest,
) -> None:
    """A business rule's failure must not retry the event into the dead letters, where the case
    would stay filed in no queue: it waits in coordination, with the reason, half-applied nowhere."""
    dispatch_service.clock.set(datetime(2199, 11, 4, 1, 0, tzinfo=MONDAY_0900.tzinfo))
    case_id = await file_case(dispatch_service, ROUTED, drain=False)

    row = await case_row(dispatch_service, case_id)
    assert (row["status"], row["department_id"], row["attempt"], row["handling_deadline"]) == (
        "coordination",
        None,
        0,
        None,
    )
    assert await attempts(dispatch_service, case_id) == []
    (queued,) = await dispatch_service.payloads()
    assert isinstance(queued, CaseQueuedForCoordination)
    assert queued.reason.startswith(f"routing rule {ROUTED_BY} could not dispatch it: no working-day calendar for 2199")
