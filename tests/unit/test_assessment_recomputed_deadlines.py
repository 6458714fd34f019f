"""What the assessment stream makes of a deadline recomputed once a provisional calendar year got
its official days: the deadline a step still to come will be judged against, as the service that
recomputed it judges it (the batch recount reads the services' records)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.events.catalogue import DeadlineKind, DeadlineRecomputed
from shared.events.envelope import Event
from tests.unit.test_assessment_domain import (
    T0,
    check_missed,
    check_requested,
    dispatched,
    event,
    filed,
    missed,
    received,
    state_after,
)


def recomputed(kind: DeadlineKind, deadline: datetime, at: datetime = T0) -> Event:
    previous = deadline - timedelta(days=1)
    return event(DeadlineRecomputed(kind=kind, deadline=deadline, provisional=False, previous=previous), at)


def test_a_dispatch_deadline_recomputed_before_the_first_dispatch_judges_it() -> None:
    late = T0 + timedelta(hours=3)
    state = state_after(received(), filed(dispatch_deadline=T0 + timedelta(hours=1)))
    assert state.dispatch_deadline == T0 + timedelta(hours=1)
    state = state_after(
        received(), filed(dispatch_deadline=T0 + timedelta(hours=1)), recomputed(DeadlineKind.DISPATCH, late)
    )
    assert state.dispatch_deadline == late


def test_an_open_checks_recomputed_deadline_is_the_one_it_is_answered_against() -> None:
    later = T0 + timedelta(days=1)
    state = state_after(received(), filed(), check_requested(), recomputed(DeadlineKind.CHECK, later))
    assert state.check_deadline == later
    # One reported missed stays late, and its deadline with it (closure recomputes it no more).
    reported = state_after(
        received(), filed(), check_requested(), check_missed(), recomputed(DeadlineKind.CHECK, later)
    )
    assert reported.check_deadline == T0 + timedelta(hours=2)


def test_a_handling_deadline_moved_past_now_is_missed_no_more() -> None:
    missed_case = (received(), filed(), dispatched(), missed())
    assert state_after(*missed_case).overdue
    moved = recomputed(DeadlineKind.HANDLING, T0 + timedelta(days=2), at=T0 + timedelta(hours=1))
    assert not state_after(*missed_case, moved).overdue
    # Moved, but still past when recomputed: missed it stays, as dispatch keeps its mark.
    still_past = recomputed(DeadlineKind.HANDLING, T0, at=T0 + timedelta(hours=1))
    assert state_after(*missed_case, still_past).overdue
    # Moved to the very instant it was recomputed at: not a miss yet, as dispatch's timer has it.
    to_now = recomputed(DeadlineKind.HANDLING, T0 + timedelta(hours=1), at=T0 + timedelta(hours=1))
    assert not state_after(*missed_case, to_now).overdue
