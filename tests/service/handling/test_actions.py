"""The department's actions on a case in its inbox: sign for it (签收), send it back (回退), ask for
more time (申请延期), report it handled (处置反馈); and every refusal, which writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from handling import handlers, queries
from handling.domain import TaskStatus
from handling.models import cases
from shared.core.errors import IllegalTransition, InvalidInput, NotFound
from shared.core.ids import new_id
from shared.events.catalogue import (
    CaseAccepted,
    CaseHandled,
    CaseReturned,
    CheckFailed,
    ExtensionRequested,
)
from tests.service.conftest import MONDAY_0900, ServiceUnderTest
from tests.service.handling.conftest import (
    CATEGORY,
    DEPARTMENT,
    DUE,
    OTHER_DEPARTMENT,
    dispatched_case,
    refused,
    reported_case,
    staff,
)

PHOTOS = ["a" * 64, "b" * 64]


async def test_a_dispatched_case_is_a_task_in_the_department_inbox(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    row = await handling.row(cases, case_id)
    assert row["status"] == TaskStatus.ASSIGNED
    assert row["department_id"] == DEPARTMENT
    assert row["dispatched_at"] == MONDAY_0900
    assert row["handling_deadline"] == DUE
    assert row["case_number"] is not None
    assert row["category_code"] == CATEGORY
    assert row["description"] == "a manhole cover is broken"
    assert row["cell_id"] == handling.ctx.city.cells[0].id
    assert row["report_photos"] == ["report-photo"]
    assert [task["id"] for task in (await queries.inbox(handling.ctx, staff(), None, 100)).rows] == [case_id]
    assert (await queries.inbox(handling.ctx, staff(OTHER_DEPARTMENT), None, 100)).rows == []
    assert await handling.payloads() == []


async def test_accept_signs_for_the_case_once(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    row = await handlers.accept(handling.ctx, user, case_id)
    assert row["status"] == TaskStatus.ACCEPTED
    assert row["accepted_by"] == user.username
    assert row == await handling.row(cases, case_id)
    events = await handling.emitted()
    assert [event.data for event in events] == [CaseAccepted(department_id=DEPARTMENT, accepted_by=user.username)]
    assert events[0].subject == str(case_id)

    await refused(handling, case_id, IllegalTransition, handlers.accept(handling.ctx, user, case_id))


async def test_return_sends_the_case_back_out_of_the_inbox(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    row = await handlers.return_case(handling.ctx, user, case_id, "not ours: a gas pipe")
    assert row["status"] == TaskStatus.RETURNED
    assert await handling.payloads() == [
        CaseReturned(department_id=DEPARTMENT, returned_by=user.username, reason="not ours: a gas pipe")
    ]
    assert (await queries.inbox(handling.ctx, user, None, 100)).rows == []

    await refused(handling, case_id, IllegalTransition, handlers.return_case(handling.ctx, user, case_id, "again"))
    await refused(handling, case_id, IllegalTransition, handlers.accept(handling.ctx, user, case_id))


async def test_an_accepted_case_can_be_returned_but_not_a_handled_one(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.accept(handling.ctx, user, case_id)
    assert (await handlers.return_case(handling.ctx, user, case_id, "not ours"))["status"] == TaskStatus.RETURNED

    handled = await dispatched_case(handling)
    await handlers.accept(handling.ctx, user, handled)
    await handlers.report_handled(handling.ctx, user, handled, "done", [])
    await refused(handling, handled, IllegalTransition, handlers.return_case(handling.ctx, user, handled, "late"))


async def test_request_extension_one_pending_request_for_a_later_deadline(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    wanted = DUE + timedelta(days=2)
    row = await handlers.request_extension(handling.ctx, user, case_id, wanted, "parts on order")
    assert row["extension_deadline"] == wanted
    assert row["handling_deadline"] == DUE
    assert row["status"] == TaskStatus.ASSIGNED
    assert await handling.payloads() == [
        ExtensionRequested(
            department_id=DEPARTMENT, requested_by=user.username, requested_deadline=wanted, reason="parts on order"
        )
    ]

    again = handlers.request_extension(handling.ctx, user, case_id, wanted + timedelta(days=1), "more")
    error = await refused(handling, case_id, IllegalTransition, again)
    assert "already pending" in str(error)


async def test_request_extension_refuses_a_deadline_that_does_not_end_later(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    for requested in (DUE, DUE - timedelta(hours=1)):
        ask = handlers.request_extension(handling.ctx, user, case_id, requested, "not later")
        error = await refused(handling, case_id, InvalidInput, ask)
        assert error.details == {"current_deadline": DUE}


async def test_request_extension_refused_once_handled(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.accept(handling.ctx, user, case_id)
    await handlers.report_handled(handling.ctx, user, case_id, "done", [])
    ask = handlers.request_extension(handling.ctx, user, case_id, DUE + timedelta(days=1), "why")
    await refused(handling, case_id, IllegalTransition, ask)


async def test_report_handled_with_photos(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.accept(handling.ctx, user, case_id)
    await handling.emitted()
    handling.clock.advance(timedelta(hours=5))
    now = handling.clock.now()

    row = await handlers.report_handled(handling.ctx, user, case_id, "cover replaced", PHOTOS)
    assert row["status"] == TaskStatus.HANDLED
    assert row["result"] == "cover replaced"
    assert row["result_photos"] == PHOTOS
    assert row["handled_at"] == row["first_handled_at"] == now
    events = await handling.emitted()
    assert [event.data for event in events] == [
        CaseHandled(department_id=DEPARTMENT, handled_by=user.username, result="cover replaced", photos=PHOTOS)
    ]
    assert events[0].time == now  # the event and the row agree to the microsecond
    assert (await queries.inbox(handling.ctx, user, None, 100)).rows == []

    again = handlers.report_handled(handling.ctx, user, case_id, "again", [])
    await refused(handling, case_id, IllegalTransition, again)


async def test_report_handled_needs_the_case_signed_for(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    report = handlers.report_handled(handling.ctx, staff(), case_id, "done", PHOTOS)
    await refused(handling, case_id, IllegalTransition, report)


async def test_rework_keeps_the_first_report_time(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    user = staff()
    await handlers.accept(handling.ctx, user, case_id)
    first = handling.clock.advance(timedelta(hours=2))
    await handlers.report_handled(handling.ctx, user, case_id, "cleared", PHOTOS)
    await handling.deliver(CheckFailed(inspector_id="I-1", reason="still broken"), case_id)
    await handling.emitted()

    second = handling.clock.advance(timedelta(hours=3))
    row = await handlers.report_handled(handling.ctx, user, case_id, "cleared again", PHOTOS[:1])
    assert row["status"] == TaskStatus.HANDLED
    assert row["handled_at"] == second
    assert row["first_handled_at"] == first
    assert row["result"] == "cleared again"
    assert await handling.payloads() == [
        CaseHandled(department_id=DEPARTMENT, handled_by=user.username, result="cleared again", photos=PHOTOS[:1])
    ]


async def test_another_departments_case_is_not_found_for_every_action(handling: ServiceUnderTest) -> None:
    case_id = await dispatched_case(handling)
    stranger = staff(OTHER_DEPARTMENT)
    ctx = handling.ctx
    actions = (
        handlers.accept(ctx, stranger, case_id),
        handlers.return_case(ctx, stranger, case_id, "not ours"),
        handlers.request_extension(ctx, stranger, case_id, DUE + timedelta(days=1), "why"),
        handlers.report_handled(ctx, stranger, case_id, "done", PHOTOS),
    )
    for action in actions:
        await refused(handling, case_id, NotFound, action)
    with pytest.raises(NotFound):
        await queries.own_case(ctx, stranger, case_id)


async def test_a_case_never_dispatched_is_no_departments(handling: ServiceUnderTest) -> None:
    case_id = await reported_case(handling)
    assert (await handling.row(cases, case_id))["status"] == TaskStatus.REPORTED
    await refused(handling, case_id, NotFound, handlers.accept(handling.ctx, staff(), case_id))
    with pytest.raises(NotFound):
        await queries.own_case(handling.ctx, staff(), case_id)


async def test_an_unknown_case_is_not_found(handling: ServiceUnderTest) -> None:
    with pytest.raises(NotFound):
        await handlers.accept(handling.ctx, staff(), new_id())
    assert await handling.payloads() == []
