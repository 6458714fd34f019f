"""What dispatch does with the other services' facts: a return (回退), a signature (签收), an
extension request, a handling report, a failed check (返工), a closure, a reopen after an unsatisfied
callback (回访) or a cancellation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch import handlers
from dispatch.models import cases
from dispatch.timer import report_missed_deadlines
from shared.core.ids import new_id
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CaseReopened,
    CaseReturned,
    CheckFailed,
    DeadlineKind,
    DeadlineMissed,
    EventPayload,
    ExtensionDenied,
    ExtensionRequested,
)
from tests.service.conftest import ServiceUnderTest
from tests.service.dispatch.conftest import (
    DISPATCHER,
    DUE,
    LEAD,
    ROUTED_TO,
    assert_refusal_left_no_trace,
    attempts,
    case_row,
    file_case,
    snapshot,
)


def returned(department_id: str = ROUTED_TO) -> CaseReturned:
    return CaseReturned(department_id=department_id, returned_by="officer-1", reason="not ours")


def handled(department_id: str = ROUTED_TO) -> CaseHandled:
    return CaseHandled(department_id=department_id, handled_by="officer-1", result="fixed")


def extension(requested: timedelta, department_id: str = ROUTED_TO) -> ExtensionRequested:
    return ExtensionRequested(
        department_id=department_id, requested_by="officer-1", requested_deadline=DUE + requested, reason="parts"
    )


# --- return (回退) ------------------------------------------------------------------------------


async def test_a_return_from_the_current_department_waits_for_a_dispatcher(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    await dispatch_service.deliver(extension(timedelta(days=1)), case_id)
    dispatch_service.clock.advance(timedelta(minutes=20))

    event = await dispatch_service.deliver(returned(), case_id, source="handling")

    row = await case_row(dispatch_service, case_id)
    assert row["status"] == "returned"
    assert (row["department_id"], row["handling_deadline"], row["deadline_missed_at"]) == (None, None, None)
    assert (row["accepted"], row["extension_deadline"], row["attempt"]) == (False, None, 1)
    assert [(a["attempt"], a["returned_at"]) for a in await attempts(dispatch_service, case_id)] == [(1, event.time)]
    assert await dispatch_service.emitted() == []

    again = await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "sanitation")
    assert (again["attempt"], again["department_id"]) == (2, "sanitation")
    assert [a["returned_at"] for a in await attempts(dispatch_service, case_id)] == [event.time, None]
    assert [type(p) for p in await dispatch_service.payloads()] == [CaseDispatched]


async def test_a_stale_return_from_a_department_the_case_has_left_is_ignored(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service)
    await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "sanitation")
    await dispatch_service.emitted()
    before = await snapshot(dispatch_service)

    await dispatch_service.deliver(returned(ROUTED_TO), case_id, source="handling")

    await assert_refusal_left_no_trace(dispatch_service, before)


# --- signature, handling, rework -----------------------------------------------------------------


async def test_the_department_signs_for_the_case(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    before = await snapshot(dispatch_service)
    await dispatch_service.deliver(CaseAccepted(department_id="sanitation", accepted_by="someone"), case_id)
    await assert_refusal_left_no_trace(dispatch_service, before)  # not the case's department

    await dispatch_service.deliver(CaseAccepted(department_id=ROUTED_TO, accepted_by="officer-1"), case_id)

    assert (await case_row(dispatch_service, case_id))["accepted"] is True
    assert await dispatch_service.emitted() == []


async def test_a_handled_case_waits_for_the_check_and_a_failed_check_sends_it_back(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service)
    await dispatch_service.deliver(extension(timedelta(days=1)), case_id)

    await dispatch_service.deliver(handled(), case_id, source="handling")

    row = await case_row(dispatch_service, case_id)
    assert (row["status"], row["extension_deadline"], row["handling_deadline"]) == ("handled", None, DUE)
    assert await dispatch_service.emitted() == []

    await dispatch_service.deliver(CheckFailed(inspector_id="I-1", reason="still broken"), case_id, source="closure")

    row = await case_row(dispatch_service, case_id)
    assert (row["status"], row["department_id"], row["handling_deadline"]) == ("dispatched", ROUTED_TO, DUE)
    assert await dispatch_service.emitted() == []


async def test_handling_reports_and_failed_checks_that_do_not_fit_are_ignored(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service)
    before = await snapshot(dispatch_service)
    await dispatch_service.deliver(handled("sanitation"), case_id)  # not the case's department
    await dispatch_service.deliver(CheckFailed(inspector_id="I-1", reason="?"), case_id)  # not handled yet
    await assert_refusal_left_no_trace(dispatch_service, before)


@pytest.mark.parametrize(
    ("fact", "status"),
    [
        (CaseClosed(closed_by="I-1", on_time=True, handling_deadline=DUE), "closed"),
        (CaseCancelled(cancelled_by="lead-1", reason="duplicate"), "cancelled"),
    ],
)
async def test_a_closed_or_cancelled_case_is_no_longer_timed(
    dispatch_service: ServiceUnderTest, fact: EventPayload, status: str
) -> None:
    case_id = await file_case(dispatch_service)
    await dispatch_service.deliver(extension(timedelta(days=1)), case_id)

    await dispatch_service.deliver(fact, case_id, source="closure")

    row = await case_row(dispatch_service, case_id)
    assert (row["status"], row["extension_deadline"]) == (status, None)
    assert await dispatch_service.emitted() == []


def reopened(department_id: str = ROUTED_TO) -> CaseReopened:
    return CaseReopened(department_id=department_id, reason="the citizen says it is still broken")


async def test_a_reopened_case_is_back_with_its_department_against_the_same_deadline(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service)
    await dispatch_service.deliver(handled(), case_id, source="handling")
    await dispatch_service.deliver(CaseClosed(closed_by="I-1", on_time=True, handling_deadline=DUE), case_id)
    assert await report_missed_deadlines(dispatch_service.ctx) == 0
    dispatch_service.clock.advance(timedelta(days=2))  # the deadline passes while the case is closed
    assert await report_missed_deadlines(dispatch_service.ctx) == 0

    await dispatch_service.deliver(reopened(), case_id, source="closure")

    row = await case_row(dispatch_service, case_id)
    assert (row["status"], row["department_id"], row["handling_deadline"], row["attempt"]) == (
        "dispatched",
        ROUTED_TO,
        DUE,
        1,
    )
    assert await dispatch_service.emitted() == []
    # Its clock runs again: the deadline it passed is reported missed, to the same department.
    assert await report_missed_deadlines(dispatch_service.ctx) == 1
    missed, _notice = await dispatch_service.payloads()
    assert missed == DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=DUE, department_id=ROUTED_TO)
    await dispatch_service.deliver(handled(), case_id, source="handling")
    assert (await case_row(dispatch_service, case_id))["status"] == "handled"


@pytest.mark.parametrize("ending", [None, CaseCancelled(cancelled_by="lead-1", reason="duplicate")])
async def test_a_reopen_of_a_case_not_closed_is_ignored(
    dispatch_service: ServiceUnderTest, ending: EventPayload | None
) -> None:
    case_id = await file_case(dispatch_service)
    if ending is not None:
        await dispatch_service.deliver(ending, case_id, source="closure")
    before = await snapshot(dispatch_service)
    await dispatch_service.deliver(reopened(), case_id, source="closure")
    await assert_refusal_left_no_trace(dispatch_service, before)


# --- extension requests (申请延期) ---------------------------------------------------------------


async def test_an_extension_request_is_held_for_the_shift_lead(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)

    await dispatch_service.deliver(extension(timedelta(days=2)), case_id, source="handling")

    row = await case_row(dispatch_service, case_id)
    assert (row["extension_deadline"], row["extension_reason"], row["extension_requested_by"]) == (
        DUE + timedelta(days=2),
        "parts",
        "officer-1",
    )
    assert row["handling_deadline"] == DUE
    assert await dispatch_service.emitted() == []


@pytest.mark.parametrize(
    ("requested", "department", "reason"),
    [
        (timedelta(0), ROUTED_TO, "request void: not after the deadline"),
        (-timedelta(hours=1), ROUTED_TO, "request void: not after the deadline"),
        (timedelta(days=2), "sanitation", "request void: not after the deadline"),
    ],
)
async def test_an_extension_request_that_cannot_stand_is_denied_at_once(
    dispatch_service: ServiceUnderTest, requested: timedelta, department: str, reason: str
) -> None:
    case_id = await file_case(dispatch_service)
    before = await snapshot(dispatch_service)

    await dispatch_service.deliver(extension(requested, department), case_id, source="handling")

    assert await snapshot(dispatch_service) == before
    assert await dispatch_service.payloads() == [ExtensionDenied(denied_by="routing-rules", reason=reason)]


async def test_an_extension_request_for_a_suspended_case_is_void(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    await handlers.suspend(dispatch_service.ctx, LEAD, case_id, "wait")
    await dispatch_service.emitted()
    before = await snapshot(dispatch_service)

    await dispatch_service.deliver(extension(timedelta(days=2)), case_id, source="handling")

    assert await snapshot(dispatch_service) == before
    assert await dispatch_service.payloads() == [
        ExtensionDenied(denied_by="routing-rules", reason="request void: the case is suspended")
    ]


# --- cases dispatch never timed ------------------------------------------------------------------


async def test_facts_about_a_case_dispatch_never_timed_change_nothing(dispatch_service: ServiceUnderTest) -> None:
    self_handled = await file_case(dispatch_service, self_handled=True)
    before = await snapshot(dispatch_service)
    facts: list[EventPayload] = [
        returned(),
        CaseAccepted(department_id=ROUTED_TO, accepted_by="officer-1"),
        extension(timedelta(days=1)),
        handled(),
        CheckFailed(inspector_id="I-1", reason="?"),
        CaseClosed(closed_by="I-1", on_time=True, self_handled=True),
        reopened(),
    ]
    for case_id in (self_handled, new_id()):
        for fact in facts:
            await dispatch_service.deliver(fact, case_id)
    await assert_refusal_left_no_trace(dispatch_service, before)
    assert await dispatch_service.rows(cases) == []
