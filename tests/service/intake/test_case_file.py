"""The case file: every service's events land in the case's timeline, and the case's row follows
the lifecycle (status, department, deadline, closure)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from intake.models import cases, timeline
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    ExtensionApproved,
    ReportSource,
)
from shared.events.envelope import Event
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, hours
from tests.service.intake.conftest import send

DEPT = "bureau-urban"
DEADLINE = MONDAY_0900 + timedelta(days=3)


async def a_case(intake: ServiceUnderTest) -> UUID:
    case_id: UUID = (await send(intake, ReportSource.INSPECTOR))["id"]
    return case_id


async def status(intake: ServiceUnderTest, case_id: UUID) -> str:
    row = await intake.row(cases, case_id)
    return str(row["status"])


def dispatched(department_id: str = DEPT, deadline: object = DEADLINE) -> CaseDispatched:
    return CaseDispatched(
        department_id=department_id, dispatched_by="dispatcher1", handling_deadline=deadline, attempt=1
    )


async def test_a_dispatch_names_the_department_and_the_handling_deadline(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    intake.clock.advance(hours(1))
    event = await intake.deliver(dispatched(), case_id, source="dispatch")
    row = await intake.row(cases, case_id)
    assert (row["status"], row["department_id"], row["handling_deadline"]) == ("dispatched", DEPT, DEADLINE)
    assert row["updated_at"] == MONDAY_0900 + hours(1)
    (step,) = await intake.rows(timeline, case_id=case_id)
    assert (step["event_id"], step["event_type"], step["service"]) == (event.id, "case.dispatched", "dispatch")
    assert (step["actor"], step["reason"], step["at"]) == ("dispatcher1", None, event.time)
    assert step["details"]["department_id"] == DEPT


async def test_the_case_follows_the_department_and_closure(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    await intake.deliver(dispatched(), case_id, source="dispatch")
    await intake.deliver(CaseAccepted(department_id=DEPT, accepted_by="clerk"), case_id, source="handling")
    assert await status(intake, case_id) == "accepted"
    later = DEADLINE + timedelta(days=1)
    await intake.deliver(ExtensionApproved(approved_by="lead", handling_deadline=later), case_id, source="dispatch")
    row = await intake.row(cases, case_id)
    assert (row["status"], row["handling_deadline"]) == ("accepted", later)
    await intake.deliver(CaseHandled(department_id=DEPT, handled_by="clerk", result="fixed"), case_id)
    assert await status(intake, case_id) == "handled"
    await intake.deliver(CheckRequested(inspector_id="insp-001", check_deadline=DEADLINE), case_id)
    assert await status(intake, case_id) == "checking"
    await intake.deliver(CheckFailed(inspector_id="insp-001", reason="still open"), case_id)
    assert await status(intake, case_id) == "rework"
    intake.clock.advance(hours(5))
    await intake.deliver(CaseClosed(closed_by="lead", on_time=True), case_id, source="closure")
    row = await intake.row(cases, case_id)
    assert (row["status"], row["closed_at"], row["on_time"]) == ("closed", MONDAY_0900 + hours(5), True)
    assert row["department_id"] == DEPT
    steps = await intake.rows(timeline, case_id=case_id)
    assert [step["event_type"] for step in sorted(steps, key=lambda step: step["seq"])] == [
        "case.dispatched",
        "case.accepted",
        "case.extension_approved",
        "case.handled",
        "case.check_requested",
        "case.check_failed",
        "case.closed",
    ]
    assert [step["actor"] for step in sorted(steps, key=lambda step: step["seq"])][-3:] == [
        "insp-001",
        "insp-001",
        "lead",
    ]


async def test_a_return_clears_the_department(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    await intake.deliver(dispatched(), case_id, source="dispatch")
    returned = CaseReturned(department_id=DEPT, returned_by="clerk", reason="not ours")
    await intake.deliver(returned, case_id, source="handling")
    row = await intake.row(cases, case_id)
    assert (row["status"], row["department_id"]) == ("returned", None)
    (step,) = await intake.rows(timeline, case_id=case_id, event_type="case.returned")
    assert (step["actor"], step["reason"]) == ("clerk", "not ours")


async def test_a_resumed_case_goes_back_to_where_it_was_suspended(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    await intake.deliver(dispatched(), case_id, source="dispatch")
    await intake.deliver(CaseAccepted(department_id=DEPT, accepted_by="clerk"), case_id)
    await intake.deliver(CaseSuspended(suspended_by="lead", reason="road works"), case_id, source="dispatch")
    row = await intake.row(cases, case_id)
    assert (row["status"], row["status_before_suspension"]) == ("suspended", "accepted")
    moved = DEADLINE + timedelta(days=2)
    await intake.deliver(CaseResumed(resumed_by="lead", handling_deadline=moved), case_id, source="dispatch")
    row = await intake.row(cases, case_id)
    assert (row["status"], row["handling_deadline"]) == ("accepted", moved)


async def test_a_batch_applies_its_events_in_order(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    moved = DEADLINE + timedelta(days=2)
    payloads = [
        dispatched(),
        CaseAccepted(department_id=DEPT, accepted_by="clerk"),
        CaseSuspended(suspended_by="lead", reason="road works"),
        CaseResumed(resumed_by="lead", handling_deadline=moved),
        CaseHandled(department_id=DEPT, handled_by="clerk", result="fixed"),
    ]
    events = [Event.occurred(p, subject=case_id, source="/citycase/x", clock=intake.clock) for p in payloads]
    await intake.deliver_events(events)
    row = await intake.row(cases, case_id)
    assert (row["status"], row["status_before_suspension"]) == ("handled", "accepted")
    assert (row["department_id"], row["handling_deadline"]) == (DEPT, moved)
    assert len(await intake.rows(timeline, case_id=case_id)) == len(payloads)


async def test_a_closed_case_stays_closed_whatever_late_event_arrives(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    await intake.deliver(dispatched(), case_id, source="dispatch")
    await intake.deliver(CaseClosed(closed_by="lead", on_time=False), case_id, source="closure")
    for late in (
        CaseAccepted(department_id=DEPT, accepted_by="clerk"),
        CaseSuspended(suspended_by="lead", reason="late"),
        CaseResumed(resumed_by="lead", handling_deadline=DEADLINE),
        CaseHandled(department_id=DEPT, handled_by="clerk", result="fixed"),
        CheckFailed(inspector_id="insp-001", reason="r"),
    ):
        await intake.deliver(late, case_id)
        row = await intake.row(cases, case_id)
        assert (row["status"], row["status_before_suspension"], row["on_time"]) == ("closed", None, False)
    assert len(await intake.rows(timeline, case_id=case_id)) == 7


async def test_a_cancelled_case_stays_cancelled(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    await intake.deliver(CaseQueuedForCoordination(reason="no rule"), case_id, source="dispatch")
    assert await status(intake, case_id) == "coordination"
    await intake.deliver(CaseCancelled(cancelled_by="lead", reason="duplicate"), case_id, source="closure")
    await intake.deliver(dispatched(), case_id, source="dispatch")
    assert await status(intake, case_id) == "cancelled"


async def test_events_that_move_nothing_still_join_the_timeline(intake: ServiceUnderTest) -> None:
    case_id = await a_case(intake)
    before = dict(await intake.row(cases, case_id))
    missed = DeadlineMissed(kind=DeadlineKind.DISPATCH, deadline=MONDAY_0900)
    await intake.deliver(missed, case_id, source="dispatch")
    assert dict(await intake.row(cases, case_id)) == before
    (step,) = await intake.rows(timeline, case_id=case_id)
    assert (step["event_type"], step["actor"], step["reason"]) == ("case.deadline_missed", "system", None)


async def test_intakes_own_events_make_the_first_steps_and_a_duplicate_joins_its_case(
    intake: ServiceUnderTest,
) -> None:
    case_id = await a_case(intake)
    merged = await send(intake, ReportSource.HOTLINE, reporter_id="hotline")
    await intake.deliver_events(await intake.emitted())
    steps = sorted(await intake.rows(timeline, case_id=case_id), key=lambda step: step["seq"])
    assert [(step["event_type"], step["service"]) for step in steps] == [
        ("report.received", "intake"),
        ("case.filed", "intake"),
        ("report.merged", "intake"),
    ]
    assert steps[1]["actor"] == "insp-001"
    own = await intake.rows(timeline, case_id=merged["id"])
    assert sorted(step["event_type"] for step in own) == ["report.merged", "report.received"]
    assert await status(intake, case_id) == "filed"


async def test_events_of_a_report_that_never_became_a_case_make_no_case(intake: ServiceUnderTest) -> None:
    report = await send(intake, ReportSource.PUBLIC)
    await intake.deliver_events(await intake.emitted())
    await intake.deliver(dispatched(), report["id"], source="dispatch")
    assert await intake.rows(cases) == []
    assert len(await intake.rows(timeline, case_id=report["id"])) == 3
