"""The persisted deadline timer: a handling deadline passes, and the stream hears of it once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dispatch import handlers
from dispatch.timer import report_missed_deadlines
from shared.events.catalogue import (
    CaseHandled,
    DeadlineKind,
    DeadlineMissed,
    ExtensionRequested,
    SupervisionIssued,
)
from tests.service.conftest import ServiceUnderTest
from tests.service.dispatch.conftest import (
    DUE,
    LEAD,
    ROUTED_TO,
    UNROUTED,
    assert_refusal_left_no_trace,
    case_row,
    file_case,
    snapshot,
)


async def test_a_missed_deadline_is_reported_once_with_a_first_supervision_notice(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service)
    dispatch_service.clock.set(DUE + timedelta(minutes=1))

    assert await report_missed_deadlines(dispatch_service.ctx) == 1

    row = await case_row(dispatch_service, case_id)
    assert (row["deadline_missed_at"], row["supervision_level"]) == (DUE + timedelta(minutes=1), 1)
    assert await dispatch_service.payloads() == [
        DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=DUE, department_id=ROUTED_TO),
        SupervisionIssued(
            department_id=ROUTED_TO, level=1, note=f"case {row['case_number']} is past its handling deadline"
        ),
    ]

    dispatch_service.clock.advance(timedelta(hours=1))
    before = await snapshot(dispatch_service)
    assert await report_missed_deadlines(dispatch_service.ctx) == 0
    await assert_refusal_left_no_trace(dispatch_service, before)


@pytest.mark.parametrize("at", [DUE - timedelta(minutes=1), DUE], ids=["before", "at its instant"])
async def test_a_deadline_not_yet_passed_is_not_reported(dispatch_service: ServiceUnderTest, at: datetime) -> None:
    # A case closed at its deadline's very instant is closed on time: that instant is not a miss.
    await file_case(dispatch_service)
    dispatch_service.clock.set(at)
    before = await snapshot(dispatch_service)
    assert await report_missed_deadlines(dispatch_service.ctx) == 0
    await assert_refusal_left_no_trace(dispatch_service, before)


async def test_a_supervised_case_gets_no_second_first_notice(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    await handlers.supervise(dispatch_service.ctx, LEAD, case_id, "hurry")
    await handlers.supervise(dispatch_service.ctx, LEAD, case_id, "hurry up")
    await dispatch_service.deliver(
        CaseHandled(department_id=ROUTED_TO, handled_by="officer-1", result="fixed"), case_id
    )  # handled but not checked: the clock still runs
    await dispatch_service.emitted()
    dispatch_service.clock.set(DUE + timedelta(minutes=1))

    assert await report_missed_deadlines(dispatch_service.ctx) == 1

    assert (await case_row(dispatch_service, case_id))["supervision_level"] == 2
    assert await dispatch_service.payloads() == [
        DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=DUE, department_id=ROUTED_TO)
    ]


async def test_suspended_and_queued_cases_are_not_timed(dispatch_service: ServiceUnderTest) -> None:
    suspended = await file_case(dispatch_service)
    await handlers.suspend(dispatch_service.ctx, LEAD, suspended, "wait")
    await file_case(dispatch_service, UNROUTED)
    await dispatch_service.emitted()
    dispatch_service.clock.set(DUE + timedelta(days=7))
    before = await snapshot(dispatch_service)

    assert await report_missed_deadlines(dispatch_service.ctx) == 0

    await assert_refusal_left_no_trace(dispatch_service, before)


async def test_an_approved_extension_starts_a_new_watch(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    dispatch_service.clock.set(DUE + timedelta(minutes=1))
    assert await report_missed_deadlines(dispatch_service.ctx) == 1
    later = DUE + timedelta(days=2)
    request = ExtensionRequested(
        department_id=ROUTED_TO, requested_by="officer-1", requested_deadline=later, reason="x"
    )
    await dispatch_service.deliver(request, case_id)
    await handlers.approve_extension(dispatch_service.ctx, LEAD, case_id)
    assert (await case_row(dispatch_service, case_id))["deadline_missed_at"] is None
    await dispatch_service.emitted()

    assert await report_missed_deadlines(dispatch_service.ctx) == 0
    dispatch_service.clock.set(later)
    assert await report_missed_deadlines(dispatch_service.ctx) == 0  # the new deadline's instant
    dispatch_service.clock.advance(timedelta(minutes=1))
    assert await report_missed_deadlines(dispatch_service.ctx) == 1

    assert await dispatch_service.payloads() == [
        DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=later, department_id=ROUTED_TO)
    ]
