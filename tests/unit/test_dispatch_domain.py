"""Every transition of dispatch's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import uuid4

import pytest

from dispatch import domain as dispatch
from shared.city.calendar import WorkingCalendar, ends_later
from shared.city.model import Category
from shared.core.errors import IllegalTransition
from shared.events.catalogue import (
    CaseDispatched,
    CaseFiled,
    CaseResumed,
    CaseSuspended,
    CategoryFamily,
    DeadlineKind,
    DeadlineMissed,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    GridPlace,
    ReportSource,
    SupervisionIssued,
)

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


D = dispatch.DispatchStatus
CALENDAR = WorkingCalendar()
PLACE = GridPlace(cell_id="c1", community_id="m1", street_id="s1", district_id="d1")


def category(time_basis: Literal["working", "calendar"] = "working", handling: int = 420) -> Category:
    """A category whose handling limit is ``handling`` minutes (420 working minutes: one working day)."""
    return Category(
        code="01-01-12",
        name="雨水箅子",
        name_en="Storm drain grate",
        family=CategoryFamily.COMPONENT,
        major_code="01-01",
        major_name="公用设施",
        major_name_en="Public utilities",
        urgent=False,
        time_basis=time_basis,
        filing=30,
        dispatch=30,
        handling=handling,
        check=120,
    )


def case(status: dispatch.DispatchStatus = D.DISPATCHED, **fields: object) -> dispatch.CaseState:
    """A case with department ``dept-a`` on its first attempt, due a day after T0."""
    state = dispatch.CaseState(
        id=uuid4(),
        status=status,
        case_number="2026-11-000001",
        category_code="01-01-12",
        department_id="dept-a",
        attempt=1,
        handling_deadline=T0 + timedelta(days=1),
        suspended_at=None,
        extension_deadline=None,
        supervision_level=0,
    )
    return replace(state, **fields)  # type: ignore[arg-type]  # the tests name real fields


def filed(*, self_handled: bool = False) -> CaseFiled:
    return CaseFiled(
        case_number="2026-11-000001",
        category_code="01-01-12",
        family=CategoryFamily.COMPONENT,
        source=ReportSource.INSPECTOR,
        place=PLACE,
        filed_by="inspector-1",
        reported_at=T0,
        dispatch_deadline=T0 + timedelta(hours=1),
        self_handled=self_handled,
    )


def extension_request(requested: datetime, department_id: str = "dept-a") -> ExtensionRequested:
    return ExtensionRequested(
        department_id=department_id, requested_by="officer-1", requested_deadline=requested, reason="parts"
    )


# --- guards and predicates ---------------------------------------------------------------------


@pytest.mark.parametrize("status", list(D))
def test_a_dispatcher_dispatches_queued_returned_or_unhandled_cases(status: dispatch.DispatchStatus) -> None:
    if status in (D.COORDINATION, D.RETURNED, D.DISPATCHED):
        dispatch.ensure_dispatchable(status, "dept-b", "dept-a")
    else:
        with pytest.raises(IllegalTransition):
            dispatch.ensure_dispatchable(status, "dept-b", "dept-a")


def test_re_dispatching_to_the_same_department_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        dispatch.ensure_dispatchable(D.DISPATCHED, "dept-a", "dept-a")


@pytest.mark.parametrize("status", list(D))
def test_suspend_and_resume(status: dispatch.DispatchStatus) -> None:
    for check, allowed in ((dispatch.ensure_suspendable, D.DISPATCHED), (dispatch.ensure_resumable, D.SUSPENDED)):
        if status is allowed:
            check(status)
        else:
            with pytest.raises(IllegalTransition):
                check(status)


def test_extension_decisions_need_a_pending_request_on_a_dispatched_case() -> None:
    assert dispatch.ensure_extension_pending(D.DISPATCHED, T0) == T0
    with pytest.raises(IllegalTransition):
        dispatch.ensure_extension_pending(D.DISPATCHED, None)
    with pytest.raises(IllegalTransition):
        dispatch.ensure_extension_pending(D.SUSPENDED, T0)


def test_an_extension_request_stands_only_for_a_later_deadline_on_a_dispatched_case() -> None:
    assert dispatch.may_hold_extension(D.DISPATCHED, T0 + timedelta(days=1), T0)
    assert not dispatch.may_hold_extension(D.DISPATCHED, T0, T0)
    assert not dispatch.may_hold_extension(D.HANDLED, T0 + timedelta(days=1), T0)
    # An extension must move the deadline later: the one rule, and the request it voids.
    assert not ends_later(T0, T0)
    void = dispatch.decide_extension_request(case(handling_deadline=T0), extension_request(T0))
    assert void.changes == {}
    assert void.events == (ExtensionDenied(denied_by="routing-rules", reason="request void: not after the deadline"),)


@pytest.mark.parametrize("status", list(D))
def test_supervision_goes_to_open_cases_with_a_department(status: dispatch.DispatchStatus) -> None:
    if status in dispatch.CLOCK_RUNNING:
        assert dispatch.is_clock_running(status)
        dispatch.ensure_supervisable(status)
    else:
        assert not dispatch.is_clock_running(status)
        with pytest.raises(IllegalTransition):
            dispatch.ensure_supervisable(status)


# --- the handling deadline ---------------------------------------------------------------------


def test_the_handling_deadline_counts_the_categorys_limit_in_working_time_from_dispatch() -> None:
    # 420 working minutes from Monday 09:00 is a full working day: Tuesday 09:00.
    assert dispatch.handling_deadline(CALENDAR, T0, category()) == T0 + timedelta(days=1)
    # Calendar time runs around the clock.
    assert dispatch.handling_deadline(CALENDAR, T0, category("calendar", 120)) == T0 + timedelta(hours=2)


def test_a_resumption_moves_the_deadline_by_the_working_time_the_case_stood_suspended() -> None:
    deadline = T0 + timedelta(days=1)
    # Suspended Monday 09:00 to 20:00 (local): 6h30 of working time (09:00-12:00, 14:30-18:00).
    # Tuesday 09:00 plus 6h30 of working time is Tuesday 18:00, not 15:30.
    moved = dispatch.resumed_deadline(CALENDAR, deadline, T0, T0 + timedelta(hours=11), category())
    assert moved == deadline + timedelta(hours=9)
    # Calendar time counts the whole pause.
    urgent = category("calendar", 120)
    assert dispatch.resumed_deadline(CALENDAR, deadline, T0, T0 + timedelta(hours=11), urgent) == deadline + timedelta(
        hours=11
    )
    assert dispatch.resumed_deadline(CALENDAR, deadline, T0, T0, category()) == deadline


# --- decisions ---------------------------------------------------------------------------------


def test_a_filed_case_starts_in_coordination_unless_it_was_handled_on_the_spot() -> None:
    case_id = uuid4()
    row = dispatch.filed_case(case_id, filed(), T0)
    assert row is not None
    assert row["id"] == case_id
    assert row["status"] is D.COORDINATION
    assert (row["attempt"], row["supervision_level"], row["accepted"]) == (0, 0, False)
    assert row["dispatch_deadline"] == T0 + timedelta(hours=1)
    assert row["filed_at"] == T0
    assert row["street_id"] == "s1"
    assert dispatch.CaseState.of(row).status is D.COORDINATION
    assert dispatch.filed_case(case_id, filed(self_handled=True), T0) is None


def test_dispatch_opens_a_new_attempt_with_a_fresh_deadline_and_no_pending_extension() -> None:
    queued = case(D.RETURNED, department_id=None, extension_deadline=T0)
    command = dispatch.Dispatch("dept-b", "dispatcher-1", T0, rule_id="rule-1")
    decision = dispatch.decide_dispatch(queued, command, CALENDAR, category())
    deadline = T0 + timedelta(days=1)
    assert decision.changes == {
        "status": D.DISPATCHED,
        "department_id": "dept-b",
        "attempt": 2,
        "rule_id": "rule-1",
        "dispatched_at": T0,
        "accepted": False,
        "handling_deadline": deadline,
        "deadline_missed_at": None,
        **dispatch.NO_EXTENSION,
    }
    assert decision.events == (
        CaseDispatched(
            department_id="dept-b",
            dispatched_by="dispatcher-1",
            handling_deadline=deadline,
            attempt=2,
            rule_id="rule-1",
        ),
    )


def test_dispatch_is_refused_where_the_guard_refuses_it() -> None:
    command = dispatch.Dispatch("dept-a", "dispatcher-1", T0)
    with pytest.raises(IllegalTransition):
        dispatch.decide_dispatch(case(D.DISPATCHED), command, CALENDAR, category())
    with pytest.raises(IllegalTransition):
        dispatch.decide_dispatch(case(D.HANDLED), replace(command, department_id="dept-b"), CALENDAR, category())


def test_a_return_from_the_current_department_sends_the_case_back_to_the_dispatcher() -> None:
    decision = dispatch.decide_return(case(extension_deadline=T0), "dept-a")
    assert decision is not None
    assert decision.changes == {
        "status": D.RETURNED,
        "department_id": None,
        "handling_deadline": None,
        "deadline_missed_at": None,
        "accepted": False,
        **dispatch.NO_EXTENSION,
    }
    assert decision.events == ()


def test_a_stale_return_changes_nothing() -> None:
    assert dispatch.decide_return(case(), "dept-b") is None
    assert dispatch.decide_return(case(D.HANDLED), "dept-a") is None
    assert dispatch.decide_return(case(D.RETURNED, department_id=None), "dept-a") is None


def test_only_the_cases_department_signs_for_it() -> None:
    decision = dispatch.decide_accept(case(), "dept-a")
    assert decision == dispatch.Decision({"accepted": True})
    assert dispatch.decide_accept(case(), "dept-b") is None


def test_an_extension_request_is_held_for_the_shift_lead() -> None:
    requested = T0 + timedelta(days=3)
    decision = dispatch.decide_extension_request(case(), extension_request(requested))
    assert decision.changes == {
        "extension_deadline": requested,
        "extension_reason": "parts",
        "extension_requested_by": "officer-1",
    }
    assert decision.events == ()


@pytest.mark.parametrize(
    ("state", "department", "reason"),
    [
        (case(D.HANDLED), "dept-a", "request void: the case is handled"),
        (case(D.SUSPENDED), "dept-a", "request void: the case is suspended"),
        (case(), "dept-b", "request void: not after the deadline"),
    ],
)
def test_an_extension_request_that_cannot_stand_is_void(
    state: dispatch.CaseState, department: str, reason: str
) -> None:
    decision = dispatch.decide_extension_request(state, extension_request(T0 + timedelta(days=3), department))
    assert decision.changes == {}
    assert decision.events == (ExtensionDenied(denied_by="routing-rules", reason=reason),)


def test_an_approved_extension_moves_the_deadline() -> None:
    requested = T0 + timedelta(days=3)
    decision = dispatch.decide_approve_extension(case(extension_deadline=requested), "lead-1")
    assert decision.changes == {"handling_deadline": requested, "deadline_missed_at": None, **dispatch.NO_EXTENSION}
    assert decision.events == (ExtensionApproved(approved_by="lead-1", handling_deadline=requested),)


def test_a_denied_extension_leaves_the_deadline() -> None:
    decision = dispatch.decide_deny_extension(case(extension_deadline=T0 + timedelta(days=3)), "lead-1", "no")
    assert decision.changes == dispatch.NO_EXTENSION
    assert decision.events == (ExtensionDenied(denied_by="lead-1", reason="no"),)


def test_extension_decisions_are_refused_without_a_pending_request() -> None:
    with pytest.raises(IllegalTransition):
        dispatch.decide_approve_extension(case(), "lead-1")
    with pytest.raises(IllegalTransition):
        dispatch.decide_deny_extension(case(D.HANDLED, extension_deadline=T0), "lead-1", "no")


def test_suspension_stops_the_clock_and_lapses_a_pending_request() -> None:
    decision = dispatch.decide_suspend(case(extension_deadline=T0), "lead-1", "waiting for the owner", T0)
    assert decision.changes == {"status": D.SUSPENDED, "suspended_at": T0, **dispatch.NO_EXTENSION}
    assert decision.events == (CaseSuspended(suspended_by="lead-1", reason="waiting for the owner"),)
    with pytest.raises(IllegalTransition):
        dispatch.decide_suspend(case(D.HANDLED), "lead-1", "no", T0)


def test_resumption_moves_the_deadline_by_the_time_suspended() -> None:
    deadline = T0 + timedelta(days=1)
    suspended = case(D.SUSPENDED, suspended_at=T0, handling_deadline=deadline)
    decision = dispatch.decide_resume(suspended, "lead-1", T0 + timedelta(hours=1), CALENDAR, category())
    moved = deadline + timedelta(hours=1)  # an hour of Monday morning's working time
    assert decision.changes == {
        "status": D.DISPATCHED,
        "suspended_at": None,
        "handling_deadline": moved,
        "deadline_missed_at": None,
    }
    assert decision.events == (CaseResumed(resumed_by="lead-1", handling_deadline=moved),)
    with pytest.raises(IllegalTransition):
        dispatch.decide_resume(case(), "lead-1", T0, CALENDAR, category())


def test_each_supervision_notice_raises_the_level() -> None:
    decision = dispatch.decide_supervise(case(D.HANDLED, supervision_level=1), "hurry")
    assert decision.changes == {"supervision_level": 2}
    assert decision.events == (SupervisionIssued(department_id="dept-a", level=2, note="hurry"),)
    with pytest.raises(IllegalTransition):
        dispatch.decide_supervise(case(D.SUSPENDED), "hurry")


def test_the_departments_report_makes_the_case_handled() -> None:
    assert dispatch.decide_handled(case(extension_deadline=T0), "dept-a") == dispatch.Decision(
        {"status": D.HANDLED, **dispatch.NO_EXTENSION}
    )
    assert dispatch.decide_handled(case(), "dept-b") is None
    assert dispatch.decide_handled(case(D.SUSPENDED), "dept-a") is None


def test_a_failed_check_sends_a_handled_case_back_for_rework() -> None:
    assert dispatch.decide_check_failed(case(D.HANDLED)) == dispatch.Decision({"status": D.DISPATCHED})
    assert dispatch.decide_check_failed(case(D.DISPATCHED)) is None
    assert dispatch.decide_check_failed(case(D.CLOSED)) is None


def test_a_closed_or_cancelled_case_is_no_longer_timed() -> None:
    assert dispatch.decide_ended(cancelled=False) == dispatch.Decision({"status": D.CLOSED, **dispatch.NO_EXTENSION})
    assert dispatch.decide_ended(cancelled=True) == dispatch.Decision({"status": D.CANCELLED, **dispatch.NO_EXTENSION})


def test_a_missed_deadline_is_reported_with_the_first_supervision_notice() -> None:
    now = T0 + timedelta(days=2)
    decision = dispatch.decide_deadline_missed(case(), now)
    assert decision.changes == {"deadline_missed_at": now, "supervision_level": 1}
    missed = DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=T0 + timedelta(days=1), department_id="dept-a")
    assert decision.events == (
        missed,
        SupervisionIssued(department_id="dept-a", level=1, note="case 2026-11-000001 is past its handling deadline"),
    )


@pytest.mark.parametrize("level", [1, 2])
def test_a_missed_deadline_of_a_case_already_supervised_sends_no_new_notice(level: int) -> None:
    now = T0 + timedelta(days=2)
    decision = dispatch.decide_deadline_missed(case(D.HANDLED, supervision_level=level), now)
    assert decision.changes == {"deadline_missed_at": now, "supervision_level": level}
    assert [type(event) for event in decision.events] == [DeadlineMissed]
