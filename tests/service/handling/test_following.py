"""Following the case from the other services' events: the task row each one leaves; none of them
makes handling emit anything.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from handling import handlers, queries
from handling.domain import TaskStatus
from handling.models import cases
from shared.core.errors import IllegalTransition, InvalidInput, NotFound
from shared.events.catalogue import (
    CaseCancelled,
    CaseClosed,
    CaseReopened,
    CaseResumed,
    CaseSuspended,
    CheckFailed,
    ExtensionApproved,
    ExtensionDenied,
)
from tests.service.conftest import ServiceUnderTest
from tests.service.handling.conftest import (
    DEPARTMENT,
    DUE,
    OTHER_DEPARTMENT,
    dispatch,
    dispatched_case,
    refused,
    reported_case,
    staff,
)


async def test_report_and_filing_make_a_task_no_department_sees_yet(handling: ServiceUnderTest) -> None:
    case_id = await reported_case(handling)
    row = await handling.row(cases, case_id)
    assert row["status"] == TaskStatus.REPORTED
    assert row["department_id"] is None
    assert row["case_number"] == f"2026-11-{case_id.int % 1_000_000:06d}"
    assert row["handling_deadline"] is None
    assert await handling.payloads() == []


async def test_an_approved_extension_moves_the_deadline(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    later = DUE + timedelta(days=2)
    await handlers.request_extension(handling.ctx, user, case_id, later, "parts on order")
    await handling.emitted()

    await handling.deliver(ExtensionApproved(approved_by="lead", handling_deadline=later), case_id)
    row = await handling.row(cases, case_id)
    assert row["handling_deadline"] == later
    assert row["extension_deadline"] is None
    assert row["status"] == TaskStatus.ASSIGNED
    assert await handling.payloads() == []
    # Answered, so the department may ask again, now beyond the new deadline.
    same = handlers.request_extension(handling.ctx, user, case_id, later, "same")
    assert (await refused(handling, case_id, InvalidInput, same)).details == {"current_deadline": later}
    await handlers.request_extension(handling.ctx, user, case_id, later + timedelta(days=1), "more")


async def test_a_denied_extension_leaves_the_deadline(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.request_extension(handling.ctx, user, case_id, DUE + timedelta(days=2), "parts on order")
    await handling.emitted()

    await handling.deliver(ExtensionDenied(denied_by="lead", reason="no"), case_id)
    row = await handling.row(cases, case_id)
    assert row["handling_deadline"] == DUE
    assert row["extension_deadline"] is None
    assert await handling.payloads() == []
    await handlers.request_extension(handling.ctx, user, case_id, DUE + timedelta(days=1), "a shorter one")


@pytest.mark.parametrize("accepted", [False, True])
async def test_a_resumption_restores_the_status_before_the_suspension(
    handling: ServiceUnderTest, accepted: bool
) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    if accepted:
        await handlers.accept(handling.ctx, user, case_id)
    status = TaskStatus.ACCEPTED if accepted else TaskStatus.ASSIGNED
    await handling.emitted()

    await handling.deliver(CaseSuspended(suspended_by="lead", reason="waiting for the owner"), case_id)
    row = await handling.row(cases, case_id)
    assert row["status"] == TaskStatus.SUSPENDED
    assert row["status_before_suspension"] == status
    assert [task["id"] for task in (await queries.inbox(handling.ctx, user, None, 100)).rows] == [case_id]
    await refused(handling, case_id, IllegalTransition, handlers.report_handled(handling.ctx, user, case_id, "x", []))

    moved = DUE + timedelta(days=1)
    await handling.deliver(CaseResumed(resumed_by="lead", handling_deadline=moved), case_id)
    row = await handling.row(cases, case_id)
    assert row["status"] == status
    assert row["handling_deadline"] == moved
    assert row["extension_deadline"] is None
    assert await handling.payloads() == []


async def test_a_failed_check_sends_the_case_back_for_rework(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.accept(handling.ctx, user, case_id)
    await handlers.report_handled(handling.ctx, user, case_id, "done", [])
    await handling.emitted()

    await handling.deliver(CheckFailed(inspector_id="I-1", reason="the cover still wobbles"), case_id)
    row = await handling.row(cases, case_id)
    assert row["status"] == TaskStatus.REWORK
    assert row["rework_reason"] == "the cover still wobbles"
    assert [task["id"] for task in (await queries.inbox(handling.ctx, user, None, 100)).rows] == [case_id]
    assert await handling.payloads() == []


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        (CaseClosed(closed_by="lead", on_time=True), TaskStatus.CLOSED),
        (CaseCancelled(cancelled_by="lead", reason="duplicate"), TaskStatus.CANCELLED),
    ],
)
async def test_closed_or_cancelled_leaves_every_inbox(
    handling: ServiceUnderTest, ending: CaseClosed | CaseCancelled, status: TaskStatus
) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handling.deliver(ending, case_id)
    assert (await handling.row(cases, case_id))["status"] == status
    assert (await queries.inbox(handling.ctx, user, None, 100)).rows == []
    assert await handling.payloads() == []
    await refused(handling, case_id, IllegalTransition, handlers.accept(handling.ctx, user, case_id))


async def test_a_reopened_case_is_back_in_the_inbox_for_rework(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.accept(handling.ctx, user, case_id)
    # A request for more time still pending when the case closed: it lapsed with the closure.
    await handlers.request_extension(handling.ctx, user, case_id, DUE + timedelta(days=2), "parts on order")
    await handlers.report_handled(handling.ctx, user, case_id, "done", [])
    await handling.deliver(CaseClosed(closed_by="insp", on_time=True), case_id)
    assert (await queries.inbox(handling.ctx, user, None, 100)).rows == []
    await handling.emitted()

    await handling.deliver(CaseReopened(department_id=DEPARTMENT, reason="the citizen says it still leaks"), case_id)

    row = await handling.row(cases, case_id)
    assert (row["status"], row["department_id"]) == (TaskStatus.REWORK, DEPARTMENT)
    assert row["rework_reason"] == "the citizen says it still leaks"
    assert row["extension_deadline"] is None
    assert [task["id"] for task in (await queries.inbox(handling.ctx, user, None, 100)).rows] == [case_id]
    assert await handling.payloads() == []
    # Reworked as after a failed check: more time may be asked for, and the case reported handled.
    await handlers.request_extension(handling.ctx, user, case_id, DUE + timedelta(days=3), "digging again")
    reported = await handlers.report_handled(handling.ctx, user, case_id, "pipe replaced", [])
    assert reported["status"] == TaskStatus.HANDLED


async def test_a_reopen_of_a_task_not_closed_changes_nothing(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    await handling.deliver(CaseCancelled(cancelled_by="lead", reason="duplicate"), case_id)
    before = dict(await handling.row(cases, case_id))
    handling.clock.advance(timedelta(minutes=30))  # any write would stamp a new updated_at
    await handling.deliver(CaseReopened(department_id=DEPARTMENT, reason="late news"), case_id)
    assert dict(await handling.row(cases, case_id)) == before
    assert await handling.payloads() == []


async def test_a_redispatch_moves_the_task_to_the_other_department(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    first, second = staff(), staff(OTHER_DEPARTMENT)
    await handlers.accept(handling.ctx, first, case_id)
    await handlers.report_handled(handling.ctx, first, case_id, "done", ["a" * 64])
    handled = await handling.row(cases, case_id)
    await handling.deliver(CheckFailed(inspector_id="I-1", reason="wrong department's pipe"), case_id)
    await handling.emitted()

    handling.clock.advance(timedelta(hours=1))
    later = DUE + timedelta(days=1)
    await dispatch(handling, case_id, OTHER_DEPARTMENT, later, attempt=2)
    row = await handling.row(cases, case_id)
    assert row["status"] == TaskStatus.ASSIGNED
    assert row["department_id"] == OTHER_DEPARTMENT
    assert row["dispatched_at"] == handling.clock.now()
    assert row["handling_deadline"] == later
    for field in ("extension_deadline", "accepted_by", "result", "result_photos", "handled_at", "rework_reason"):
        assert row[field] is None, field
    # Handled once counts for the assessment whatever came after.
    assert row["first_handled_at"] == handled["first_handled_at"] is not None
    assert (await queries.inbox(handling.ctx, first, None, 100)).rows == []
    assert [task["id"] for task in (await queries.inbox(handling.ctx, second, None, 100)).rows] == [case_id]
    assert await handling.payloads() == []

    await refused(handling, case_id, NotFound, handlers.accept(handling.ctx, first, case_id))
    assert (await handlers.accept(handling.ctx, second, case_id))["accepted_by"] == second.username


async def test_a_returned_case_dispatched_again_is_the_new_departments(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    await handlers.return_case(handling.ctx, staff(), case_id, "not ours")
    await dispatch(handling, case_id, OTHER_DEPARTMENT, attempt=2)
    row = await queries.own_case(handling.ctx, staff(OTHER_DEPARTMENT), case_id)
    assert row["status"] == TaskStatus.ASSIGNED
    assert row["department_id"] == OTHER_DEPARTMENT != DEPARTMENT
