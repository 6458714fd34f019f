"""Every transition of closure's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from closure import domain as closure
from shared.core.errors import IllegalTransition, OutOfScope
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseCancelled,
    CaseClosed,
    CaseFiled,
    CaseReopened,
    CategoryFamily,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    DeadlineRecomputed,
    GridPlace,
    ReportSource,
)

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


C = closure.ClosureStatus
PLACE = GridPlace(cell_id="c1", community_id="m1", street_id="s1", district_id="d1")


def filed(*, self_handled: bool = False) -> CaseFiled:
    return CaseFiled(
        case_number="2026-11-000001",
        category_code="01-01-12",
        family=CategoryFamily.COMPONENT,
        source=ReportSource.INSPECTOR,
        place=PLACE,
        filed_by="inspector-1",
        reported_at=T0,
        self_handled=self_handled,
    )


CHECKING = closure.CaseState(
    status=C.CHECKING,
    inspector_id="insp-1",
    handling_deadline=T0 + timedelta(hours=4),
    check_deadline=T0 + timedelta(hours=2),
    check_missed_at=None,
    checks=1,
    checks_requested=2,
    checks_on_time=1,
    checks_failed=1,
)


def case(status: closure.ClosureStatus = C.CHECKING) -> closure.CaseState:
    return replace(CHECKING, status=status)


def verdict(
    state: closure.CaseState,
    *,
    passed: bool,
    at: datetime = T0,
    inspector_id: str | None = "insp-1",
    note: str | None = None,
    photos: tuple[str, ...] = (),
) -> closure.Decision:
    return closure.decide_check(
        state, inspector_id=inspector_id, closed_by="inspector-1", passed=passed, note=note, photos=photos, now=at
    )


@pytest.mark.parametrize("status", list(C))
def test_checks_answer_check_tasks_and_cancellation_voids_open_cases(status: closure.ClosureStatus) -> None:
    if status is C.CHECKING:
        closure.ensure_can_check(status)
    else:
        with pytest.raises(IllegalTransition):
            closure.ensure_can_check(status)
    if status in (C.CLOSED, C.CANCELLED):
        with pytest.raises(IllegalTransition):
            closure.ensure_can_cancel(status)
    else:
        closure.ensure_can_cancel(status)


def test_on_time_means_no_later_than_the_deadline_in_force() -> None:
    assert closure.is_closed_on_time(T0, T0)
    assert not closure.is_closed_on_time(T0 + timedelta(seconds=1), T0)
    assert closure.is_closed_on_time(T0, None)


def test_a_check_is_on_time_when_answered_no_later_than_its_deadline() -> None:
    assert closure.is_check_on_time(T0, T0)
    assert not closure.is_check_on_time(T0 + timedelta(microseconds=1), T0)
    assert closure.is_check_on_time(T0, None)


# --- decide functions ------------------------------------------------------------------------


def test_a_filed_case_opens_with_its_inspector_and_no_checks() -> None:
    decision = closure.decide_filing(filed(), "insp-1", T0)
    assert decision.changes == {
        "case_number": "2026-11-000001",
        "category_code": "01-01-12",
        "source": "inspector",
        "cell_id": "c1",
        "inspector_id": "insp-1",
        "status": C.OPEN,
        "checks": 0,
        "checks_requested": 0,
        "checks_on_time": 0,
        "checks_failed": 0,
    }
    assert decision.events == ()


def test_a_self_handled_case_closes_on_time_when_filed() -> None:
    decision = closure.decide_filing(filed(self_handled=True), "insp-1", T0)
    assert decision.changes["status"] is C.CLOSED
    assert decision.changes["closed_at"] == T0
    assert decision.changes["on_time"] is True
    assert decision.changes["checks"] == 0
    assert decision.events == (
        CaseClosed(closed_by="inspector-1", on_time=True, handling_deadline=None, self_handled=True),
    )


def test_the_deadline_in_force_moves_and_a_dispatch_names_the_department() -> None:
    official = {"handling_deadline": T0, "handling_deadline_provisional": False}
    assert closure.decide_deadline(T0).changes == official
    assert closure.decide_deadline(T0, "dept-1").changes == {**official, "department_id": "dept-1"}
    assert closure.decide_deadline(T0, "dept-1").events == ()
    provisional = closure.decide_deadline(T0, provisional=True).changes
    assert provisional == {"handling_deadline": T0, "handling_deadline_provisional": True}


def test_a_handled_open_case_becomes_a_check_task_with_its_deadline() -> None:
    due = T0 + timedelta(hours=2)
    decision = closure.decide_check_request(case(C.OPEN), result="fixed", check_deadline=due, now=T0)
    assert decision.changes == {
        "status": C.CHECKING,
        "handled_at": T0,
        "handling_result": "fixed",
        "check_deadline": due,
        "check_deadline_provisional": False,
        "checks_requested": 3,
    }
    assert decision.events == (CheckRequested(inspector_id="insp-1", check_deadline=due),)
    provisional = closure.decide_check_request(
        case(C.OPEN), result="fixed", check_deadline=due, now=T0, provisional=True
    )
    assert provisional.changes["check_deadline_provisional"] is True
    assert provisional.events == (CheckRequested(inspector_id="insp-1", check_deadline=due, provisional=True),)


def test_an_open_checks_provisional_deadline_is_recomputed_unless_reported_missed() -> None:
    due, later = T0 + timedelta(hours=2), T0 + timedelta(days=1)
    checking = replace(case(C.CHECKING), check_deadline=due, check_deadline_provisional=True)
    decision = closure.decide_check_recompute(checking, later, provisional=False)
    assert decision.changes == {"check_deadline": later, "check_deadline_provisional": False}
    assert decision.events == (
        DeadlineRecomputed(kind=DeadlineKind.CHECK, deadline=later, provisional=False, previous=due),
    )
    assert closure.decide_check_recompute(checking, due, provisional=True).events == ()
    missed = replace(checking, check_missed_at=due)
    assert closure.decide_check_recompute(missed, later, provisional=False).events == ()
    assert closure.decide_check_recompute(replace(checking, status=C.CLOSED), later, provisional=False).events == ()


@pytest.mark.parametrize("status", [C.CHECKING, C.CLOSED, C.CANCELLED])
def test_only_an_open_case_gets_a_check_task(status: closure.ClosureStatus) -> None:
    assert not closure.may_request_check(status)
    with pytest.raises(IllegalTransition):
        closure.decide_check_request(case(status), result="fixed", check_deadline=T0, now=T0)
    assert closure.may_request_check(C.OPEN)


def test_a_passed_check_counts_and_closes_on_time_before_the_handling_deadline() -> None:
    decision = verdict(case(), passed=True, note="ok", photos=("a" * 64,))
    assert decision.changes == {
        "checks": 2,
        "checks_on_time": 2,
        "check_missed_at": None,
        "status": C.CLOSED,
        "closed_at": T0,
        "on_time": True,
    }
    assert decision.events == (
        CheckPassed(inspector_id="insp-1", note="ok", photos=["a" * 64]),
        CaseClosed(closed_by="inspector-1", on_time=True, handling_deadline=T0 + timedelta(hours=4)),
    )


def test_a_late_check_closes_late_and_does_not_count_as_on_time() -> None:
    late = T0 + timedelta(hours=5)
    decision = verdict(case(), passed=True, at=late)
    assert decision.changes["checks"] == 2
    assert decision.changes["checks_on_time"] == 1
    assert decision.changes["on_time"] is False
    assert decision.events[-1] == CaseClosed(
        closed_by="inspector-1", on_time=False, handling_deadline=T0 + timedelta(hours=4)
    )


def test_a_failed_check_sends_the_case_back_open_for_rework() -> None:
    decision = verdict(case(), passed=False, note="still there")
    assert decision.changes == {
        "checks": 2,
        "checks_on_time": 2,
        "check_missed_at": None,
        "status": C.OPEN,
        "check_deadline": None,
        "checks_failed": 2,
    }
    assert decision.events == (CheckFailed(inspector_id="insp-1", reason="still there"),)
    assert verdict(case(), passed=False).events == (CheckFailed(inspector_id="insp-1", reason="not solved"),)


@pytest.mark.parametrize(
    ("state", "now", "missed"),
    [
        (case(), T0 + timedelta(hours=2, microseconds=1), True),
        (case(), T0 + timedelta(hours=2), False),  # answered now, it would still be on time
        (case(), T0 + timedelta(hours=1), False),
        (replace(CHECKING, check_missed_at=T0 + timedelta(hours=3)), T0 + timedelta(hours=4), False),
        (case(C.OPEN), T0 + timedelta(hours=3), False),
        (case(C.CLOSED), T0 + timedelta(hours=3), False),
        (case(C.CANCELLED), T0 + timedelta(hours=3), False),
    ],
    ids=["past", "at the deadline", "before", "reported already", "open", "closed", "cancelled"],
)
def test_a_check_is_missed_once_when_its_deadline_passes_unanswered(
    state: closure.CaseState, now: datetime, missed: bool
) -> None:
    assert closure.is_check_missed(state, now) is missed
    if missed:
        decision = closure.decide_check_missed(state, now)
        assert decision.changes == {"check_missed_at": now}
        assert decision.events == (DeadlineMissed(kind=DeadlineKind.CHECK, deadline=T0 + timedelta(hours=2)),)
    else:
        with pytest.raises(IllegalTransition):
            closure.decide_check_missed(state, now)


def test_a_check_reported_missed_stays_late_when_answered() -> None:
    missed = replace(CHECKING, check_missed_at=T0 + timedelta(hours=3))
    # Even stamped no later than the deadline (a clock set back): the miss was said, it stands.
    for passed in (True, False):
        decision = verdict(missed, passed=passed, at=T0 + timedelta(hours=1))
        assert (decision.changes["checks"], decision.changes["checks_on_time"]) == (2, 1)
        assert decision.changes["check_missed_at"] is None


def test_a_check_task_is_the_cells_inspectors_and_answers_only_a_check() -> None:
    with pytest.raises(OutOfScope):
        verdict(case(), passed=True, inspector_id="insp-2")
    with pytest.raises(OutOfScope):
        verdict(case(C.OPEN), passed=True, inspector_id=None)
    with pytest.raises(IllegalTransition):
        verdict(case(C.OPEN), passed=True)


@pytest.mark.parametrize("status", [C.OPEN, C.CHECKING])
def test_cancelling_voids_a_case_not_yet_ended(status: closure.ClosureStatus) -> None:
    decision = closure.decide_cancel(status, cancelled_by="lead-1", reason="duplicate")
    assert decision.changes == {"status": C.CANCELLED}
    assert decision.events == (CaseCancelled(cancelled_by="lead-1", reason="duplicate"),)


@pytest.mark.parametrize("status", [C.CLOSED, C.CANCELLED])
def test_an_ended_case_cannot_be_cancelled(status: closure.ClosureStatus) -> None:
    with pytest.raises(IllegalTransition):
        closure.decide_cancel(status, cancelled_by="lead-1", reason="duplicate")


CLOSED = replace(CHECKING, status=C.CLOSED, check_deadline=None, department_id="dept-water", reopens=0)


def callback(verdict: CallbackVerdict, note: str | None = "the pipe still leaks") -> CallbackRecorded:
    return CallbackRecorded(hotline_id="12345", work_order="WO-1", verdict=verdict, note=note)


def test_an_unsatisfied_callback_reopens_a_closed_case_for_its_department_where_the_rule_says_so() -> None:
    decision = closure.decide_callback(CLOSED, callback(CallbackVerdict.UNSATISFIED), reopen_on_unsatisfied=True)

    assert decision.changes == {"status": C.OPEN, "closed_at": None, "on_time": None, "reopens": 1}
    assert decision.events == (CaseReopened(department_id="dept-water", reason="the pipe still leaks"),)
    # Reopened again after the next closure: the count goes on.
    again = closure.decide_callback(
        replace(CLOSED, reopens=1), callback(CallbackVerdict.UNSATISFIED, note=None), reopen_on_unsatisfied=True
    )
    assert again.changes["reopens"] == 2
    assert again.events == (CaseReopened(department_id="dept-water", reason=closure.UNSATISFIED_WITHOUT_NOTE),)


@pytest.mark.parametrize(
    ("state", "verdict", "rule"),
    [
        (CLOSED, CallbackVerdict.UNSATISFIED, False),
        (CLOSED, CallbackVerdict.SATISFIED, True),
        (CLOSED, CallbackVerdict.BASICALLY_SATISFIED, True),
        (replace(CLOSED, status=C.OPEN), CallbackVerdict.UNSATISFIED, True),
        (replace(CLOSED, status=C.CHECKING), CallbackVerdict.UNSATISFIED, True),
        (replace(CLOSED, status=C.CANCELLED), CallbackVerdict.UNSATISFIED, True),
        (replace(CLOSED, department_id=None), CallbackVerdict.UNSATISFIED, True),
    ],
    ids=["rule says no", "satisfied", "basically satisfied", "reopened", "checking", "cancelled", "self-handled"],
)
def test_a_callback_changes_nothing_unless_unsatisfied_with_a_closed_dispatched_case_and_the_rule(
    state: closure.CaseState, verdict: CallbackVerdict, rule: bool
) -> None:
    assert not closure.may_reopen(state, verdict, reopen_on_unsatisfied=rule)
    assert closure.decide_callback(state, callback(verdict), reopen_on_unsatisfied=rule) == closure.Decision({})


def test_a_reopened_case_gets_a_check_task_again_when_handled() -> None:
    reopened = closure.decide_callback(CLOSED, callback(CallbackVerdict.UNSATISFIED), reopen_on_unsatisfied=True)
    state = replace(CLOSED, status=reopened.changes["status"], reopens=reopened.changes["reopens"])
    assert closure.may_request_check(state.status)
    decision = closure.decide_check_request(
        state, result="fixed properly", check_deadline=T0 + timedelta(hours=9), now=T0 + timedelta(hours=8)
    )
    assert decision.changes["status"] is C.CHECKING
    assert decision.changes["checks_requested"] == CLOSED.checks_requested + 1
