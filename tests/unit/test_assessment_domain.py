"""The assessment rules on their own: what each kind of event does to a case's state, what the
state contributes to the counters, and the change a case's events make (no database)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from assessment import domain
from assessment.domain import Attribution, CaseState, Flow
from shared.city.indicators import COUNTERS, DERIVED, INDICATORS, NOT_FOR_DEPARTMENTS, RANKED_KINDS, SCOPE_KINDS
from shared.core.errors import InvalidInput
from shared.core.ids import new_id
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseReopened,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CategoryFamily,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    DeadlineRecomputed,
    EventPayload,
    ExtensionApproved,
    GeoPoint,
    GridPlace,
    ReportReceived,
    ReportSource,
    SupervisionIssued,
)
from shared.events.envelope import Event

ZONE = ZoneInfo("Asia/Shanghai")
# Monday 2026-11-30 10:00 in Shanghai: the last day of a month, so a later step lands in December.
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
CASE = new_id()
PLACE = GridPlace(cell_id="c1", community_id="m1", street_id="s1", district_id="d1")
ATTRIBUTION = Attribution(
    family_of=lambda code: "component" if code.startswith("01") else "event",
    inspector_of=lambda cell: {"c1": "insp-1"}.get(cell),
)
CONTRACT = (Path(__file__).resolve().parents[2] / "assessment" / "INDICATORS.md").read_text()


def event(data: EventPayload, at: datetime = T0, case_id: UUID = CASE) -> Event:
    return Event(id=new_id(), source="/citycase/test", subject=str(case_id), time=at, data=data)


def received(at: datetime = T0) -> Event:
    return event(
        ReportReceived(
            source=ReportSource.HOTLINE,
            category_code="01-01-04",
            description="a broken manhole cover",
            point=GeoPoint(lon=113.1, lat=30.6),
            place=PLACE,
        ),
        at,
    )


def filed(
    at: datetime = T0,
    *,
    filing_deadline: datetime | None = None,
    dispatch_deadline: datetime | None = None,
    self_handled: bool = False,
) -> Event:
    return event(
        CaseFiled(
            case_number="2026-11-000001",
            category_code="01-01-04",
            family=CategoryFamily.COMPONENT,
            source=ReportSource.HOTLINE,
            place=PLACE,
            filed_by="operator-1",
            reported_at=T0 - timedelta(minutes=10),
            filing_deadline=filing_deadline,
            dispatch_deadline=dispatch_deadline,
            self_handled=self_handled,
        ),
        at,
    )


def dispatched(department: str = "dept-a", at: datetime = T0, attempt: int = 1) -> Event:
    return event(
        CaseDispatched(
            department_id=department,
            dispatched_by="dispatcher-1",
            handling_deadline=at + timedelta(days=1),
            attempt=attempt,
        ),
        at,
    )


def returned(department: str = "dept-a") -> Event:
    return event(CaseReturned(department_id=department, returned_by="clerk", reason="not ours"))


def handled(department: str = "dept-a") -> Event:
    return event(CaseHandled(department_id=department, handled_by="clerk", result="fixed"))


def missed(kind: DeadlineKind = DeadlineKind.HANDLING, department: str | None = "dept-a") -> Event:
    return event(DeadlineMissed(kind=kind, deadline=T0, department_id=department))


def check_requested(deadline: datetime = T0 + timedelta(hours=2)) -> Event:
    return event(CheckRequested(inspector_id="insp-1", check_deadline=deadline))


def check_missed(at: datetime = T0 + timedelta(hours=3)) -> Event:
    """Closure's check timer: the open check passed its deadline unanswered."""
    return event(DeadlineMissed(kind=DeadlineKind.CHECK, deadline=T0 + timedelta(hours=2)), at)


def closed(on_time: bool = True, at: datetime = T0) -> Event:
    return event(CaseClosed(closed_by="insp-1", on_time=on_time), at)


def called_back(verdict: CallbackVerdict, at: datetime = T0 + timedelta(days=1)) -> Event:
    """The hotline's callback to the citizen (回访)."""
    return event(CallbackRecorded(hotline_id="12345", work_order="WO-1", verdict=verdict, note="a note"), at)


def reopened(at: datetime = T0 + timedelta(days=1)) -> Event:
    return event(CaseReopened(department_id="dept-a", reason="still broken"), at)


def state_after(*events: Event) -> CaseState:
    state = CaseState()
    for one in events:
        assert domain.apply(state, one, ATTRIBUTION)
    return state


# --- one event kind at a time ------------------------------------------------------------------


def test_a_report_places_the_case_and_asks_the_city_what_events_leave_out() -> None:
    state = state_after(received())
    assert (state.received_at, state.source, state.category_code) == (T0, "hotline", "01-01-04")
    assert (state.cell_id, state.community_id, state.street_id, state.district_id) == ("c1", "m1", "s1", "d1")
    assert (state.family, state.inspector_id) == ("component", "insp-1")
    assert state.flow is Flow.NONE
    assert state.filed_at is None


def test_an_event_applied_twice_changes_the_state_once() -> None:
    state = CaseState()
    once = dispatched()
    assert domain.apply(state, once, ATTRIBUTION)
    assert not domain.apply(state, once, ATTRIBUTION)
    assert state.assignments == [["dept-a", False]]
    assert state.event_ids == [str(once.id)]


@pytest.mark.parametrize(
    ("deadline", "on_time"),
    [(None, True), (T0, True), (T0 + timedelta(hours=1), True), (T0 - timedelta(seconds=1), False)],
)
def test_filing_is_on_time_up_to_its_deadline(deadline: datetime | None, on_time: bool) -> None:
    state = state_after(received(), filed(filing_deadline=deadline, dispatch_deadline=T0 + timedelta(hours=2)))
    assert (state.filed_at, state.filed_on_time) == (T0, on_time)
    assert state.dispatch_deadline == T0 + timedelta(hours=2)
    assert state.flow is Flow.COORDINATION


def test_a_self_handled_filing_never_waits_for_dispatch() -> None:
    assert state_after(received(), filed(self_handled=True)).flow is Flow.NONE


def test_a_filing_seen_without_its_report_places_the_case_from_itself() -> None:
    state = state_after(filed())
    assert state.received_at == T0 - timedelta(minutes=10)
    assert (state.source, state.district_id, state.inspector_id, state.family) == (
        "hotline",
        "d1",
        "insp-1",
        "component",
    )


def test_a_filing_after_its_report_keeps_the_reports_time() -> None:
    state = state_after(received(T0 - timedelta(hours=1)), filed())
    assert state.received_at == T0 - timedelta(hours=1)


def test_a_case_queued_for_coordination_waits() -> None:
    state = state_after(filed(self_handled=True), event(CaseQueuedForCoordination(reason="no owner")))
    assert state.flow is Flow.COORDINATION


def test_dispatches_are_kept_in_order_and_the_first_time_counts() -> None:
    later = T0 + timedelta(hours=3)
    state = state_after(filed(), missed(), dispatched("dept-a"))
    assert state.overdue is False
    state = state_after(filed(), dispatched("dept-a"), returned("dept-a"), dispatched("dept-b", later, 2))
    assert state.assignments == [["dept-a", True], ["dept-b", False]]
    assert (state.first_dispatched_at, state.flow, state.current_department) == (T0, Flow.DISPATCHED, "dept-b")


def test_a_return_counts_only_from_the_department_holding_the_case() -> None:
    state = state_after(filed(), dispatched("dept-a"), missed())
    assert state.overdue
    domain.apply(state, returned("dept-b"), ATTRIBUTION)
    assert (state.flow, state.assignments, state.overdue) == (Flow.DISPATCHED, [["dept-a", False]], True)
    domain.apply(state, returned("dept-a"), ATTRIBUTION)
    assert (state.flow, state.assignments, state.overdue) == (Flow.RETURNED, [["dept-a", True]], False)
    assert state.current_department is None


def test_a_return_after_the_report_back_is_not_taken() -> None:
    state = state_after(filed(), dispatched("dept-a"), handled("dept-a"), returned("dept-a"))
    assert (state.flow, state.assignments) == (Flow.HANDLED, [["dept-a", False]])


def test_handling_counts_from_anyone_but_moves_the_flow_only_from_the_holder() -> None:
    state = state_after(filed(), dispatched("dept-a"), handled("dept-b"))
    assert (state.handled, state.flow) == (True, Flow.DISPATCHED)
    domain.apply(state, handled("dept-a"), ATTRIBUTION)
    assert state.flow is Flow.HANDLED


@pytest.mark.parametrize(
    ("answered", "on_time"),
    [(T0 + timedelta(hours=1), True), (T0 + timedelta(hours=2), True), (T0 + timedelta(hours=3), False)],
)
def test_a_check_answer_is_on_time_up_to_the_check_deadline(answered: datetime, on_time: bool) -> None:
    state = state_after(filed(), dispatched(), handled(), check_requested())
    assert (state.checks_requested, state.check_deadline) == (1, T0 + timedelta(hours=2))
    domain.apply(state, event(CheckPassed(inspector_id="insp-1"), answered), ATTRIBUTION)
    assert (state.checks_due, state.checks_on_time) == (1, int(on_time))
    assert (state.check_deadline, state.reworked) == (None, False)
    assert state.flow is Flow.HANDLED


def test_a_check_open_within_its_limit_is_not_due_yet() -> None:
    state = state_after(filed(), dispatched(), handled(), check_requested())
    assert (state.checks_requested, state.checks_due, state.checks_on_time) == (1, 0, 0)


@pytest.mark.parametrize("passed", [True, False])
def test_a_check_past_its_limit_is_due_once_and_late_however_it_is_answered(passed: bool) -> None:
    state = state_after(filed(), dispatched(), handled(), check_requested(), check_missed())
    assert (state.checks_due, state.checks_on_time, state.check_missed) == (1, 0, True)
    domain.apply(state, check_missed(T0 + timedelta(hours=4)), ATTRIBUTION)  # said twice: still once
    assert state.checks_due == 1
    # Even an answer stamped before the deadline (a clock set back): the miss was said, it stands.
    answer = CheckPassed(inspector_id="insp-1") if passed else CheckFailed(inspector_id="insp-1", reason="no")
    domain.apply(state, event(answer, T0 + timedelta(hours=1)), ATTRIBUTION)
    assert (state.checks_due, state.checks_on_time, state.check_missed, state.check_deadline) == (1, 0, False, None)


def test_after_a_missed_check_the_next_check_starts_afresh() -> None:
    state = state_after(
        filed(),
        dispatched(),
        handled(),
        check_requested(),
        check_missed(),
        event(CheckFailed(inspector_id="insp-1", reason="no"), T0 + timedelta(hours=4)),
        handled(),
        check_requested(T0 + timedelta(hours=6)),
        event(CheckPassed(inspector_id="insp-1"), T0 + timedelta(hours=5)),
    )
    assert (state.checks_requested, state.checks_due, state.checks_on_time) == (2, 2, 1)


def test_a_check_miss_without_an_open_check_changes_nothing() -> None:
    answered = event(CheckPassed(inspector_id="insp-1"), T0 + timedelta(hours=1))
    for history in ([filed(), dispatched()], [filed(), dispatched(), handled(), check_requested(), answered]):
        before = state_after(*history)
        after = state_after(*history, check_missed())
        assert (after.checks_due, after.checks_on_time, after.check_missed) == (
            before.checks_due,
            before.checks_on_time,
            False,
        )


def test_a_failed_check_is_an_answer_and_sends_the_case_back_for_rework() -> None:
    failed = event(CheckFailed(inspector_id="insp-1", reason="still broken"), T0 + timedelta(hours=1))
    state = state_after(filed(), dispatched(), handled(), check_requested(), failed)
    assert (state.checks_requested, state.checks_due, state.checks_on_time, state.check_deadline) == (1, 1, 1, None)
    assert (state.reworked, state.flow) == (True, Flow.DISPATCHED)


def test_an_answer_without_a_pending_check_is_due_and_not_on_time() -> None:
    state = state_after(filed(), event(CheckPassed(inspector_id="insp-1")))
    assert (state.checks_due, state.checks_on_time) == (1, 0)


def test_a_failed_check_before_the_report_back_leaves_the_flow() -> None:
    state = state_after(filed(), dispatched(), event(CheckFailed(inspector_id="insp-1", reason="no")))
    assert (state.reworked, state.flow) == (True, Flow.DISPATCHED)


def test_suspension_and_resumption() -> None:
    state = state_after(filed(), dispatched(), missed(), event(CaseSuspended(suspended_by="lead", reason="weather")))
    assert (state.flow, state.overdue) == (Flow.SUSPENDED, True)
    domain.apply(state, event(CaseResumed(resumed_by="lead", handling_deadline=T0 + timedelta(days=2))), ATTRIBUTION)
    assert (state.flow, state.overdue) == (Flow.DISPATCHED, False)


def test_an_approved_extension_clears_the_overdue() -> None:
    state = state_after(filed(), dispatched(), missed())
    domain.apply(
        state, event(ExtensionApproved(approved_by="lead", handling_deadline=T0 + timedelta(days=3))), ATTRIBUTION
    )
    assert state.overdue is False


@pytest.mark.parametrize(
    ("miss", "overdue"),
    [
        (missed(DeadlineKind.HANDLING, "dept-a"), True),
        (missed(DeadlineKind.HANDLING, None), True),
        (missed(DeadlineKind.HANDLING, "dept-b"), False),
        (missed(DeadlineKind.DISPATCH, "dept-a"), False),
        (missed(DeadlineKind.CHECK, "dept-a"), False),
    ],
)
def test_only_a_missed_handling_deadline_of_the_holder_makes_the_case_overdue(miss: Event, overdue: bool) -> None:
    assert state_after(filed(), dispatched("dept-a"), miss).overdue is overdue


def test_a_miss_that_arrives_after_the_return_is_forgotten() -> None:
    assert state_after(filed(), dispatched("dept-a"), returned("dept-a"), missed(department=None)).overdue is False


def test_closing_and_cancelling() -> None:
    state = state_after(filed(), dispatched(), event(CaseClosed(closed_by="insp-1", on_time=True)))
    assert (state.closed, state.closed_on_time, state.flow) == (True, True, Flow.CLOSED)
    state = state_after(filed(), event(CaseCancelled(cancelled_by="lead", reason="duplicate")))
    assert state.cancelled
    assert state.flow is Flow.COORDINATION


@pytest.mark.parametrize(
    ("verdicts", "satisfied"),
    [
        ([CallbackVerdict.SATISFIED], True),
        ([CallbackVerdict.BASICALLY_SATISFIED], True),
        ([CallbackVerdict.UNSATISFIED], False),
        ([CallbackVerdict.UNSATISFIED, CallbackVerdict.BASICALLY_SATISFIED], True),
        ([CallbackVerdict.SATISFIED, CallbackVerdict.UNSATISFIED], False),
    ],
)
def test_a_callback_is_counted_once_and_its_latest_verdict_decides_satisfied(
    verdicts: list[CallbackVerdict], satisfied: bool
) -> None:
    state = state_after(received(), filed(), dispatched(), handled(), closed(), *map(called_back, verdicts))
    assert (state.called_back, state.satisfied) == (True, satisfied)
    assert (state.closed, state.flow) == (True, Flow.CLOSED)  # a verdict alone changes nothing else
    counted = values(domain.contribution(state, ZONE), ("department", "dept-a", date(2026, 11, 30)))
    assert (counted["callbacks"], counted.get("satisfied", 0)) == (1, int(satisfied))


def test_a_reopened_case_is_reworked_and_not_closed_until_it_closes_again() -> None:
    state = state_after(received(), filed(), dispatched(), handled(), closed(on_time=True))
    domain.apply(state, called_back(CallbackVerdict.UNSATISFIED), ATTRIBUTION)
    domain.apply(state, reopened(), ATTRIBUTION)
    assert (state.closed, state.closed_on_time, state.reworked, state.flow) == (False, False, True, Flow.DISPATCHED)
    assert state.current_department == "dept-a"
    # Handled again, checked, closed again: late this time.
    for again in (handled(), closed(on_time=False, at=T0 + timedelta(days=3))):
        domain.apply(state, again, ATTRIBUTION)
    assert (state.closed, state.closed_on_time, state.reworked, state.flow) == (True, False, True, Flow.CLOSED)


def test_a_reopened_case_past_its_handling_deadline_is_overdue_open_again() -> None:
    # Reported missed before the closure: closure won over it, the reopen shows it again.
    state = state_after(received(), filed(), dispatched(), missed(), closed(on_time=False), reopened())
    counted = values(domain.contribution(state, ZONE), ("department", "dept-a", date(2026, 11, 30)))
    assert counted["overdue_open"] == 1
    assert "closed" not in counted
    # Or missed after the reopen: dispatch's timer reports it to the holder.
    state = state_after(received(), filed(), dispatched(), closed(), reopened(), missed())
    assert (state.overdue, state.closed) == (True, False)


def test_an_event_that_counts_nothing_is_still_remembered() -> None:
    notice = event(SupervisionIssued(department_id="dept-a", level=1, note="hurry"))
    before = state_after(filed(), dispatched())
    after = CaseState.from_json(json.loads(before.to_text()))  # a copy: to_json shares the lists
    assert domain.apply(after, notice, ATTRIBUTION)
    assert after.to_json() == {**before.to_json(), "event_ids": [*before.event_ids, str(notice.id)]}


def test_every_kind_the_stream_counts_has_its_applier() -> None:
    counted = {
        ReportReceived,
        CaseFiled,
        CaseQueuedForCoordination,
        CaseDispatched,
        CaseReturned,
        CaseHandled,
        CheckRequested,
        CheckPassed,
        CheckFailed,
        CaseSuspended,
        CaseResumed,
        ExtensionApproved,
        DeadlineMissed,
        DeadlineRecomputed,
        CaseClosed,
        CaseReopened,
        CallbackRecorded,
        CaseCancelled,
    }
    assert set(domain._APPLY) == counted


# --- contribution and decide ------------------------------------------------------------------


def values(contribution: domain.Contribution, key: domain.ContributionKey) -> dict[str, int]:
    return {name: n for name, n in zip(COUNTERS, contribution.get(key, [0] * len(COUNTERS)), strict=True) if n}


def test_a_case_counts_its_report_on_the_day_received_and_the_rest_on_the_day_filed() -> None:
    day = date(2026, 11, 30)
    state = state_after(
        received(T0 - timedelta(days=1)), filed(), dispatched(), returned(), dispatched("dept-b", T0, 2)
    )
    result = domain.contribution(state, ZONE)
    assert values(result, ("district", "d1", day - timedelta(days=1))) == {"reports": 1, "filed": 1, "filed_on_time": 1}
    assert values(result, ("city", "city", day)) == {
        "cases_dispatched": 1,
        "dispatched_on_time": 1,
        "dispatches": 2,
        "returns": 1,
    }
    assert values(result, ("department", "dept-a", day)) == {"dispatches": 1, "returns": 1}
    # On-time dispatch is the command center's figure: the department holding the case has none.
    assert values(result, ("department", "dept-b", day)) == {"dispatches": 1}
    assert {kind for kind, _, _ in result} == set(SCOPE_KINDS)


def test_closure_wins_over_overdue_and_a_cancelled_case_keeps_only_its_report() -> None:
    day = date(2026, 11, 30)
    closed = state_after(received(), filed(), dispatched(), missed(), event(CaseClosed(closed_by="x", on_time=False)))
    assert values(domain.contribution(closed, ZONE), ("city", "city", day)) == {
        "reports": 1,
        "filed": 1,
        "filed_on_time": 1,
        "cases_dispatched": 1,
        "dispatched_on_time": 1,
        "dispatches": 1,
        "closed": 1,
    }
    cancelled = state_after(received(), filed(), dispatched(), event(CaseCancelled(cancelled_by="lead", reason="void")))
    result = domain.contribution(cancelled, ZONE)
    assert values(result, ("city", "city", day)) == {"reports": 1, "cancelled": 1}
    assert not any(kind == "department" for kind, _, _ in result)


def test_decide_gives_the_change_of_the_contribution_and_nothing_for_duplicates() -> None:
    history = [received(), filed(), dispatched(), missed()]
    state = CaseState()
    first = domain.decide(state, history, ATTRIBUTION, ZONE)
    assert first is not None
    assert domain.decide(state, history, ATTRIBUTION, ZONE) is None
    # A closure in December corrects the November case's counters: overdue out, closed in.
    closure = event(CaseClosed(closed_by="insp-1", on_time=True), T0 + timedelta(days=2))
    change = domain.decide(state, [history[-1], closure], ATTRIBUTION, ZONE)
    assert change is not None
    rows = domain.to_periods(change)
    expected = [0] * len(COUNTERS)
    expected[COUNTERS.index("closed")] = expected[COUNTERS.index("closed_on_time")] = 1
    expected[COUNTERS.index("overdue_open")] = -1
    assert rows[("city", "city", "month", date(2026, 11, 1))] == expected
    assert rows[("department", "dept-a", "week", date(2026, 11, 30))] == expected
    assert not any(start >= date(2026, 12, 1) for _, _, _, start in rows)


def test_a_reopen_retracts_the_closure_and_counts_the_rework_in_the_filing_period() -> None:
    state = CaseState()
    history = [received(), filed(), dispatched(), handled(), closed(on_time=True)]
    assert domain.decide(state, history, ATTRIBUTION, ZONE) is not None
    # Called back and reopened in December: the November case's counters change.
    change = domain.decide(state, [called_back(CallbackVerdict.UNSATISFIED), reopened()], ATTRIBUTION, ZONE)
    assert change is not None
    rows = domain.to_periods(change)
    expected = dict.fromkeys(COUNTERS, 0) | {"closed": -1, "closed_on_time": -1, "reworked": 1, "callbacks": 1}
    for key in (("city", "city", "month", date(2026, 11, 1)), ("department", "dept-a", "month", date(2026, 11, 1))):
        assert rows[key] == list(expected.values())
    assert not any(start >= date(2026, 12, 1) for _, _, _, start in rows)


def test_callbacks_of_a_cancelled_case_are_retracted_with_the_rest() -> None:
    state = state_after(
        received(),
        filed(),
        dispatched(),
        closed(),
        called_back(CallbackVerdict.SATISFIED),
        reopened(),
        event(CaseCancelled(cancelled_by="lead", reason="void")),
    )
    result = domain.contribution(state, ZONE)
    assert values(result, ("city", "city", date(2026, 11, 30))) == {"reports": 1, "cancelled": 1}
    assert not any(kind == "department" for kind, _, _ in result)


def test_to_periods_folds_days_into_their_weeks_and_months() -> None:
    one = [0] * len(COUNTERS)
    one[0] = 1
    rows = domain.to_periods([(("city", "city", date(2026, 11, 30)), one), (("city", "city", date(2026, 12, 1)), one)])
    assert rows[("city", "city", "week", date(2026, 11, 30))] == [2, *[0] * (len(COUNTERS) - 1)]
    assert rows[("city", "city", "month", date(2026, 11, 1))] == one
    assert rows[("city", "city", "month", date(2026, 12, 1))] == one
    assert len(rows) == 5


# --- the names --------------------------------------------------------------------------------


def contract_names(section: str) -> list[str]:
    text = CONTRACT.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return [
        name
        for cell in re.findall(r"^\| (`[^|]+) \|", text, flags=re.MULTILINE)
        for name in re.findall(r"`(\w+)`", cell)
    ]


def test_the_names_are_those_of_the_contract() -> None:
    assert tuple(contract_names("Base counters")) == COUNTERS
    assert tuple(contract_names("Derived indicators")) == DERIVED
    assert tuple(contract_names("Scopes")) == SCOPE_KINDS
    assert (*COUNTERS, *DERIVED) == INDICATORS
    assert set(RANKED_KINDS) <= set(SCOPE_KINDS)
    assert domain.COUNTERS is COUNTERS


@pytest.mark.parametrize(("dispatch_deadline", "on_time"), [(None, 1), (T0, 1), (T0 - timedelta(minutes=1), 0)])
def test_the_department_holding_a_case_is_not_credited_with_its_dispatch_on_time(
    dispatch_deadline: datetime | None, on_time: int
) -> None:
    day = date(2026, 11, 30)
    result = domain.contribution(
        state_after(received(), filed(dispatch_deadline=dispatch_deadline), dispatched()), ZONE
    )
    assert values(result, ("department", "dept-a", day)) == {"dispatches": 1}
    for kind, scope_id in (("city", "city"), ("district", "d1"), ("inspector", "insp-1"), ("source", "hotline")):
        scope = values(result, (kind, scope_id, day))
        assert (scope["cases_dispatched"], scope.get("dispatched_on_time", 0)) == (1, on_time)


def test_a_department_is_answered_and_ranked_only_by_what_it_has() -> None:
    some = {**dict.fromkeys(COUNTERS, 0), "cases_dispatched": 2, "dispatched_on_time": 1, "closed": 1}
    counters, indicators = domain.figures("department", some)
    assert set(counters) == set(COUNTERS) - NOT_FOR_DEPARTMENTS
    assert set(indicators) == set(DERIVED) - NOT_FOR_DEPARTMENTS
    assert "on_time_dispatch_rate" not in indicators
    assert domain.figures("district", some) == (some, domain.derived(some))
    assert domain.figures("district", some)[1]["on_time_dispatch_rate"] == 0.5
    for name in ("on_time_dispatch_rate", "dispatched_on_time", "cases_dispatched", "effective_filing_rate"):
        with pytest.raises(InvalidInput, match=f"a department has no {name}"):
            domain.ensure_scope_has("department", name)
    for kind in RANKED_KINDS:
        domain.ensure_scope_has(kind, "on_time_closure_rate")
        if kind != "department":
            domain.ensure_scope_has(kind, "on_time_dispatch_rate")


def test_the_on_time_check_rate_is_over_the_checks_due() -> None:
    # Pingdingshan, H1 2023: 16,463 checks on time of 16,488 checked; the checks still open within
    # their limit are not in the denominator.
    pingdingshan = {**dict.fromkeys(COUNTERS, 0), "checks_requested": 16_500, "checks_due": 16_488}
    pingdingshan["checks_on_time"] = 16_463
    assert domain.derived(pingdingshan)["on_time_check_rate"] == 16_463 / 16_488
    waiting = {**dict.fromkeys(COUNTERS, 0), "checks_requested": 3}
    assert domain.derived(waiting)["on_time_check_rate"] is None


def test_derived_answers_every_derived_indicator_and_none_over_zero() -> None:
    zero = dict.fromkeys(COUNTERS, 0)
    answer = domain.derived(zero)
    assert tuple(answer) == DERIVED
    assert answer["due"] == 0
    assert all(answer[name] is None for name in DERIVED if name != "due")
    some = {**zero, "returns": 1, "dispatches": 4, "closed": 3, "overdue_open": 1, "closed_on_time": 2}
    answer = domain.derived(some)
    assert (answer["due"], answer["closure_rate"], answer["on_time_closure_rate"]) == (4, 0.75, 0.5)
    assert (answer["return_rate"], answer["accurate_dispatch_rate"]) == (0.25, 0.75)
    assert domain.derived({**zero, "callbacks": 4, "satisfied": 3})["satisfaction_rate"] == 0.75
