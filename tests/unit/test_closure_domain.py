"""Every transition of closure's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closure import domain as closure
from shared.core.errors import IllegalTransition

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


C = closure.ClosureStatus


@pytest.mark.parametrize("status", list(C))
def test_checks_answer_check_tasks_and_cancellation_voids_open_cases(status: closure.ClosureStatus) -> None:
    if status is C.CHECKING:
        closure.check_can_check(status)
    else:
        with pytest.raises(IllegalTransition):
            closure.check_can_check(status)
    if status in (C.CLOSED, C.CANCELLED):
        with pytest.raises(IllegalTransition):
            closure.check_can_cancel(status)
    else:
        closure.check_can_cancel(status)


def test_on_time_means_no_later_than_the_deadline_in_force() -> None:
    assert closure.closed_on_time(T0, T0)
    assert not closure.closed_on_time(T0 + timedelta(seconds=1), T0)
    assert closure.closed_on_time(T0, None)


def test_a_check_is_on_time_when_answered_no_later_than_its_deadline() -> None:
    assert closure.check_answered_on_time(T0, T0)
    assert not closure.check_answered_on_time(T0 + timedelta(microseconds=1), T0)
    assert closure.check_answered_on_time(T0, None)
