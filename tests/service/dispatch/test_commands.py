"""The command center's commands: dispatch and re-dispatch (派遣), extension decisions (延期),
suspension (挂账) and resumption, supervision (督办); and their refusals, which leave no trace."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from dispatch import handlers
from shared.core.errors import IllegalTransition, InvalidInput, NotFound
from shared.core.ids import new_id
from shared.events.catalogue import (
    CaseCancelled,
    CaseDispatched,
    CaseHandled,
    CaseResumed,
    CaseSuspended,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    SupervisionIssued,
)
from tests.service.conftest import ServiceUnderTest
from tests.service.dispatch.conftest import (
    DISPATCHER,
    DUE,
    LEAD,
    ROUTED_TO,
    UNROUTED,
    assert_refusal_left_no_trace,
    at,
    attempts,
    case_row,
    file_case,
    snapshot,
)


async def request_extension(sut: ServiceUnderTest, case_id: UUID, days: int = 2) -> None:
    """The case's department asks for ``days`` more days; dispatch holds the request."""
    requested = DUE + timedelta(days=days)
    await sut.deliver(
        ExtensionRequested(
            department_id=ROUTED_TO, requested_by="officer-1", requested_deadline=requested, reason="parts"
        ),
        case_id,
        source="handling",
    )
    assert await sut.emitted() == []


# --- dispatch and re-dispatch -------------------------------------------------------------------


async def test_a_dispatcher_dispatches_a_case_from_the_coordination_queue(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service, UNROUTED)
    dispatch_service.clock.advance(timedelta(minutes=5))

    row = await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "bureau-urban")

    # An urgent category runs on calendar time: 120 minutes from dispatch.
    now = at(hours=5 / 60)
    assert row["status"] == "dispatched"
    assert (row["department_id"], row["attempt"], row["rule_id"]) == ("bureau-urban", 1, None)
    assert (row["dispatched_at"], row["handling_deadline"]) == (now, now + timedelta(hours=2))
    assert dict(row) == await case_row(dispatch_service, case_id)
    assert [
        (a["attempt"], a["department_id"], a["dispatched_at"]) for a in await attempts(dispatch_service, case_id)
    ] == [(1, "bureau-urban", now)]
    (event,) = await dispatch_service.emitted()
    assert event.data == CaseDispatched(
        department_id="bureau-urban",
        dispatched_by="dispatcher-1",
        handling_deadline=now + timedelta(hours=2),
        attempt=1,
    )
    assert event.time == now


async def test_re_dispatch_opens_a_new_attempt_with_a_fresh_deadline(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    await request_extension(dispatch_service, case_id)
    dispatch_service.clock.advance(timedelta(hours=1))

    row = await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "sanitation")

    assert (row["department_id"], row["attempt"], row["accepted"]) == ("sanitation", 2, False)
    assert row["handling_deadline"] == DUE + timedelta(hours=1)  # a working day from Monday 10:00
    assert row["extension_deadline"] is None  # the old department's request lapses
    assert [(a["attempt"], a["department_id"]) for a in await attempts(dispatch_service, case_id)] == [
        (1, ROUTED_TO),
        (2, "sanitation"),
    ]
    assert await dispatch_service.payloads() == [
        CaseDispatched(
            department_id="sanitation",
            dispatched_by="dispatcher-1",
            handling_deadline=DUE + timedelta(hours=1),
            attempt=2,
        )
    ]


async def test_re_dispatch_to_the_same_department_is_refused(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    before = await snapshot(dispatch_service)
    with pytest.raises(IllegalTransition):
        await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, ROUTED_TO)
    await assert_refusal_left_no_trace(dispatch_service, before)


async def test_dispatch_to_an_unknown_department_is_refused(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service, UNROUTED)
    before = await snapshot(dispatch_service)
    with pytest.raises(InvalidInput):
        await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "no-such-department")
    await assert_refusal_left_no_trace(dispatch_service, before)


async def test_a_handled_or_cancelled_case_is_not_dispatched(dispatch_service: ServiceUnderTest) -> None:
    handled = await file_case(dispatch_service)
    await dispatch_service.deliver(
        CaseHandled(department_id=ROUTED_TO, handled_by="officer-1", result="fixed"), handled
    )
    cancelled = await file_case(dispatch_service, UNROUTED)
    await dispatch_service.deliver(CaseCancelled(cancelled_by="lead-1", reason="duplicate"), cancelled)
    before = await snapshot(dispatch_service)
    for case_id in (handled, cancelled):
        with pytest.raises(IllegalTransition):
            await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, case_id, "sanitation")
    await assert_refusal_left_no_trace(dispatch_service, before)


async def test_commands_on_a_case_dispatch_does_not_know_are_404(dispatch_service: ServiceUnderTest) -> None:
    unknown = new_id()
    before = await snapshot(dispatch_service)
    with pytest.raises(NotFound):
        await handlers.dispatch_case(dispatch_service.ctx, DISPATCHER, unknown, "sanitation")
    with pytest.raises(NotFound):
        await handlers.approve_extension(dispatch_service.ctx, LEAD, unknown)
    with pytest.raises(NotFound):
        await handlers.suspend(dispatch_service.ctx, LEAD, unknown, "why")
    await assert_refusal_left_no_trace(dispatch_service, before)


# --- extensions --------------------------------------------------------------------------------


async def test_an_approved_extension_moves_the_deadline(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    await request_extension(dispatch_service, case_id, days=2)

    row = await handlers.approve_extension(dispatch_service.ctx, LEAD, case_id)

    assert row["handling_deadline"] == DUE + timedelta(days=2)
    assert (row["extension_deadline"], row["extension_reason"], row["extension_requested_by"]) == (None, None, None)
    assert row["status"] == "dispatched"
    assert await dispatch_service.payloads() == [
        ExtensionApproved(approved_by="lead-1", handling_deadline=DUE + timedelta(days=2))
    ]


async def test_a_denied_extension_leaves_the_deadline(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    await request_extension(dispatch_service, case_id)

    row = await handlers.deny_extension(dispatch_service.ctx, LEAD, case_id, "do it now")

    assert row["handling_deadline"] == DUE
    assert row["extension_deadline"] is None
    assert await dispatch_service.payloads() == [ExtensionDenied(denied_by="lead-1", reason="do it now")]


async def test_an_extension_decision_without_a_pending_request_is_refused(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)
    before = await snapshot(dispatch_service)
    with pytest.raises(IllegalTransition):
        await handlers.approve_extension(dispatch_service.ctx, LEAD, case_id)
    with pytest.raises(IllegalTransition):
        await handlers.deny_extension(dispatch_service.ctx, LEAD, case_id, "no")
    await assert_refusal_left_no_trace(dispatch_service, before)


# --- suspension and resumption -----------------------------------------------------------------


async def test_a_suspension_moves_the_deadline_by_the_working_time_it_lasted(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service)
    await request_extension(dispatch_service, case_id)
    dispatch_service.clock.advance(timedelta(hours=2))  # Monday 11:00

    suspended = await handlers.suspend(dispatch_service.ctx, LEAD, case_id, "waiting for the owner")

    assert (suspended["status"], suspended["suspended_at"]) == ("suspended", at(hours=2))
    assert suspended["extension_deadline"] is None
    assert suspended["handling_deadline"] == DUE
    assert await dispatch_service.payloads() == [CaseSuspended(suspended_by="lead-1", reason="waiting for the owner")]

    # Resumed Monday 15:30: of the 4h30 suspended, 11:00-12:00 and 14:30-15:30 were working time.
    dispatch_service.clock.advance(timedelta(hours=4, minutes=30))
    resumed = await handlers.resume(dispatch_service.ctx, LEAD, case_id)

    moved = DUE + timedelta(hours=2)
    assert (resumed["status"], resumed["suspended_at"], resumed["handling_deadline"]) == ("dispatched", None, moved)
    assert await dispatch_service.payloads() == [CaseResumed(resumed_by="lead-1", handling_deadline=moved)]
    assert resumed["handling_deadline"] == (await case_row(dispatch_service, case_id))["handling_deadline"]


async def test_only_a_dispatched_case_is_suspended_and_only_a_suspended_one_resumed(
    dispatch_service: ServiceUnderTest,
) -> None:
    queued = await file_case(dispatch_service, UNROUTED)
    dispatched = await file_case(dispatch_service)
    await handlers.suspend(dispatch_service.ctx, LEAD, dispatched, "wait")
    await dispatch_service.emitted()
    before = await snapshot(dispatch_service)
    with pytest.raises(IllegalTransition):
        await handlers.suspend(dispatch_service.ctx, LEAD, queued, "wait")
    with pytest.raises(IllegalTransition):
        await handlers.suspend(dispatch_service.ctx, LEAD, dispatched, "again")
    with pytest.raises(IllegalTransition):
        await handlers.resume(dispatch_service.ctx, LEAD, queued)
    await assert_refusal_left_no_trace(dispatch_service, before)


# --- supervision -------------------------------------------------------------------------------


async def test_each_supervision_notice_raises_the_level(dispatch_service: ServiceUnderTest) -> None:
    case_id = await file_case(dispatch_service)

    first = await handlers.supervise(dispatch_service.ctx, LEAD, case_id, "hurry")
    second = await handlers.supervise(dispatch_service.ctx, LEAD, case_id, "hurry up")

    assert (first["supervision_level"], second["supervision_level"]) == (1, 2)
    assert await dispatch_service.payloads() == [
        SupervisionIssued(department_id=ROUTED_TO, level=1, note="hurry"),
        SupervisionIssued(department_id=ROUTED_TO, level=2, note="hurry up"),
    ]


async def test_supervision_of_a_case_without_a_running_clock_is_refused(dispatch_service: ServiceUnderTest) -> None:
    queued = await file_case(dispatch_service, UNROUTED)
    before = await snapshot(dispatch_service)
    with pytest.raises(IllegalTransition):
        await handlers.supervise(dispatch_service.ctx, LEAD, queued, "hurry")
    await assert_refusal_left_no_trace(dispatch_service, before)
