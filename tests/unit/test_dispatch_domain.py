"""Every transition of dispatch's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from uuid import uuid4

import pytest

from dispatch import domain as dispatch
from shared.city.calendar import OfficialYear, TimeBasis, TimeLimit, WorkingCalendar, ends_later
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
    DeadlineRecomputed,
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
        filed_at=T0,
        dispatch_deadline=T0 + timedelta(hours=1),
        dispatch_deadline_provisional=False,
        dispatched_at=T0,
        handling_deadline_provisional=False,
        granted_deadline=None,
        pauses=(),
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
    assert dispatch.handling_deadline(CALENDAR, case(), category()) == (T0 + timedelta(days=1), False)
    # Calendar time runs around the clock.
    assert dispatch.handling_deadline(CALENDAR, case(), category("calendar", 120)).at == T0 + timedelta(hours=2)


def test_each_suspension_moves_the_deadline_by_the_working_time_the_case_stood_suspended() -> None:
    deadline = T0 + timedelta(days=1)
    # Suspended Monday 09:00 to 20:00 (local): 6h30 of working time (09:00-12:00, 14:30-18:00).
    # Tuesday 09:00 plus 6h30 of working time is Tuesday 18:00, not 15:30.
    once = case(pauses=((T0, T0 + timedelta(hours=11)),))
    assert dispatch.handling_deadline(CALENDAR, once, category()).at == deadline + timedelta(hours=9)
    # Calendar time counts the whole pause.
    urgent = category("calendar", 120)
    assert dispatch.handling_deadline(CALENDAR, once, urgent).at == T0 + timedelta(hours=2 + 11)
    assert dispatch.handling_deadline(CALENDAR, case(pauses=((T0, T0),)), category()).at == deadline
    # Two pauses of an hour of working time each: two hours.
    twice = case(pauses=((T0, T0 + timedelta(hours=1)), (T0 + timedelta(hours=2), T0 + timedelta(hours=3))))
    assert dispatch.handling_deadline(CALENDAR, twice, category()).at == deadline + timedelta(hours=2)


def test_a_granted_extension_is_a_date_that_later_suspensions_move() -> None:
    granted = T0 + timedelta(days=3)
    extended = case(granted_deadline=granted)
    assert dispatch.handling_deadline(CALENDAR, extended, category()) == (granted, False)
    paused = replace(extended, pauses=((T0, T0 + timedelta(hours=1)),))
    assert dispatch.handling_deadline(CALENDAR, paused, category()).at == granted + timedelta(hours=1)


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
        "handling_deadline_provisional": False,
        "granted_deadline": None,
        "pauses": [],
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
        "handling_deadline_provisional": False,
        "granted_deadline": None,
        "pauses": [],
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
    assert decision.changes == {
        "handling_deadline": requested,
        "handling_deadline_provisional": False,
        "granted_deadline": requested,
        "pauses": [],
        "deadline_missed_at": None,
        **dispatch.NO_EXTENSION,
    }
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
        "handling_deadline_provisional": False,
        "pauses": [[T0.isoformat(), (T0 + timedelta(hours=1)).isoformat()]],
        "deadline_missed_at": None,
    }
    assert decision.events == (CaseResumed(resumed_by="lead-1", handling_deadline=moved),)
    with pytest.raises(IllegalTransition):
        dispatch.decide_resume(case(), "lead-1", T0, CALENDAR, category())


# --- deadlines counted on a provisional calendar year -----------------------------------------

YEAR_END = datetime(2026, 12, 28, 1, 0, tzinfo=UTC)  # Monday 28 December 2026, 09:00 in Shanghai
FIVE_DAYS = category(handling=5 * 420)
# 28, 29, 30, 31 December; 1 January is New Year's Day (provisional 2027) and the weekend
# follows: the fifth working day ends on Tuesday 5 January, 09:00.
PROVISIONAL_DEADLINE = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
# A notice that, say, gives Monday 4 January off as well: Wednesday 6 January.
NOTICE = OfficialYear(2027, frozenset({date(2027, 1, 1), date(2027, 1, 4)}), frozenset())
OFFICIAL_DEADLINE = datetime(2027, 1, 6, 1, 0, tzinfo=UTC)


def official_calendar() -> WorkingCalendar:
    return WorkingCalendar(official_years=[NOTICE])


def year_end_case(status: dispatch.DispatchStatus = D.DISPATCHED, **fields: object) -> dispatch.CaseState:
    """A case dispatched at YEAR_END on the provisional 2027."""
    dispatched = case(
        status, dispatched_at=YEAR_END, handling_deadline=PROVISIONAL_DEADLINE, handling_deadline_provisional=True
    )
    return replace(dispatched, **fields)  # type: ignore[arg-type]  # the tests name real fields


def test_a_dispatch_whose_deadline_needs_a_year_nobody_published_is_provisional() -> None:
    queued = case(D.COORDINATION, department_id=None, attempt=0, handling_deadline=None, dispatched_at=None)
    decision = dispatch.decide_dispatch(queued, dispatch.Dispatch("dept-a", "d", YEAR_END), CALENDAR, FIVE_DAYS)
    assert decision.changes["handling_deadline"] == PROVISIONAL_DEADLINE
    assert decision.changes["handling_deadline_provisional"] is True
    (dispatched,) = decision.events
    assert isinstance(dispatched, CaseDispatched)
    assert (dispatched.handling_deadline, dispatched.provisional) == (PROVISIONAL_DEADLINE, True)
    # The same dispatch a week earlier ends within 2026: official.
    earlier = dispatch.decide_dispatch(
        queued, dispatch.Dispatch("dept-a", "d", YEAR_END - timedelta(days=7)), CALENDAR, FIVE_DAYS
    )
    assert earlier.changes["handling_deadline_provisional"] is False


def test_a_provisional_handling_deadline_is_recomputed_on_the_official_year() -> None:
    decision = dispatch.decide_recompute(year_end_case(), official_calendar(), FIVE_DAYS, YEAR_END)
    assert decision.changes == {
        "handling_deadline": OFFICIAL_DEADLINE,
        "handling_deadline_provisional": False,
        "deadline_missed_at": None,
    }
    assert decision.events == (
        DeadlineRecomputed(
            kind=DeadlineKind.HANDLING, deadline=OFFICIAL_DEADLINE, provisional=False, previous=PROVISIONAL_DEADLINE
        ),
    )


def test_a_deadline_the_official_year_leaves_in_place_becomes_official() -> None:
    same = WorkingCalendar(official_years=[OfficialYear(2027, frozenset({date(2027, 1, 1)}), frozenset())])
    decision = dispatch.decide_recompute(year_end_case(), same, FIVE_DAYS, YEAR_END)
    assert decision.changes == {
        "handling_deadline": PROVISIONAL_DEADLINE,
        "handling_deadline_provisional": False,
        "deadline_missed_at": None,
    }
    (recomputed,) = decision.events
    assert isinstance(recomputed, DeadlineRecomputed)
    assert (recomputed.deadline, recomputed.provisional) == (PROVISIONAL_DEADLINE, False)


def test_without_the_official_year_a_provisional_deadline_stays_as_it_is() -> None:
    assert dispatch.decide_recompute(year_end_case(), CALENDAR, FIVE_DAYS, YEAR_END) == dispatch.Decision()


@pytest.mark.parametrize("status", [D.CLOSED, D.CANCELLED, D.RETURNED])
def test_a_deadline_no_longer_running_is_not_recomputed(status: dispatch.DispatchStatus) -> None:
    assert dispatch.decide_recompute(year_end_case(status=status), official_calendar(), FIVE_DAYS, YEAR_END) == (
        dispatch.Decision()
    )


def test_a_deadline_moved_past_now_is_missed_no_more() -> None:
    after_it = PROVISIONAL_DEADLINE + timedelta(hours=1)
    moved = dispatch.decide_recompute(year_end_case(), official_calendar(), FIVE_DAYS, after_it)
    assert moved.changes["deadline_missed_at"] is None
    # Recomputed at the official deadline's very instant: not a miss yet, as the timer has it.
    at_it = dispatch.decide_recompute(year_end_case(), official_calendar(), FIVE_DAYS, OFFICIAL_DEADLINE)
    assert at_it.changes["deadline_missed_at"] is None
    # Recomputed after the official deadline too, a miss the timer reported stands.
    too_late = OFFICIAL_DEADLINE + timedelta(hours=1)
    assert (
        "deadline_missed_at"
        not in dispatch.decide_recompute(year_end_case(), official_calendar(), FIVE_DAYS, too_late).changes
    )


def test_a_suspension_in_the_provisional_year_is_counted_again_too() -> None:
    # Suspended over the whole of Monday 4 January: provisionally a working day, officially not.
    pause = (datetime(2027, 1, 4, 0, 0, tzinfo=UTC), datetime(2027, 1, 4, 12, 0, tzinfo=UTC))
    paused = year_end_case(pauses=(pause,))
    provisional = dispatch.handling_deadline(CALENDAR, paused, FIVE_DAYS)
    assert provisional == (PROVISIONAL_DEADLINE + timedelta(days=1), True)  # a working day stood still
    # Officially Monday is off: the pause cost nothing, and the deadline is the official one.
    assert dispatch.handling_deadline(official_calendar(), paused, FIVE_DAYS) == (OFFICIAL_DEADLINE, False)


def test_a_provisional_dispatch_deadline_is_recomputed_until_the_first_dispatch() -> None:
    # Filed on Thursday 31 December at 17:50: 30 working minutes end in 2027.
    filed_at = datetime(2026, 12, 31, 9, 50, tzinfo=UTC)
    provisional = CALENDAR.deadline(filed_at, TimeLimit(30, TimeBasis.WORKING))
    assert provisional.provisional
    queued = case(
        D.COORDINATION,
        attempt=0,
        department_id=None,
        handling_deadline=None,
        dispatched_at=None,
        filed_at=filed_at,
        dispatch_deadline=provisional.at,
        dispatch_deadline_provisional=True,
    )
    decision = dispatch.decide_recompute(queued, official_calendar(), category(), filed_at)
    # Officially Monday 4 January is off as well: Tuesday 5 January, 08:50.
    official = datetime(2027, 1, 5, 0, 50, tzinfo=UTC)
    assert decision.changes == {"dispatch_deadline": official, "dispatch_deadline_provisional": False}
    assert decision.events == (
        DeadlineRecomputed(kind=DeadlineKind.DISPATCH, deadline=official, provisional=False, previous=provisional.at),
    )
    # Once dispatched, the dispatch deadline has been judged: it stays.
    dispatched = replace(queued, status=D.DISPATCHED, attempt=1)
    assert dispatch.decide_recompute(dispatched, official_calendar(), category(), filed_at) == dispatch.Decision()


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


@pytest.mark.parametrize("status", list(D))
def test_a_reopened_closed_case_is_back_with_its_department_against_the_same_deadline(
    status: dispatch.DispatchStatus,
) -> None:
    decision = dispatch.decide_reopened(case(status))
    if status is D.CLOSED:
        assert decision == dispatch.Decision({"status": D.DISPATCHED})
        assert dispatch.is_clock_running(D.DISPATCHED)
    else:
        assert decision is None


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
