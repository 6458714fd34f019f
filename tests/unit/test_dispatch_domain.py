"""Every transition of dispatch's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch import domain as dispatch
from shared.core.errors import IllegalTransition, InvalidInput

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


D = dispatch.DispatchStatus


@pytest.mark.parametrize("status", list(D))
def test_a_dispatcher_dispatches_queued_returned_or_unhandled_cases(status: dispatch.DispatchStatus) -> None:
    if status in (D.COORDINATION, D.RETURNED, D.DISPATCHED):
        dispatch.check_can_dispatch(status, "dept-b", "dept-a")
    else:
        with pytest.raises(IllegalTransition):
            dispatch.check_can_dispatch(status, "dept-b", "dept-a")


def test_re_dispatching_to_the_same_department_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        dispatch.check_can_dispatch(D.DISPATCHED, "dept-a", "dept-a")


@pytest.mark.parametrize("status", list(D))
def test_suspend_and_resume(status: dispatch.DispatchStatus) -> None:
    for check, allowed in ((dispatch.check_can_suspend, D.DISPATCHED), (dispatch.check_can_resume, D.SUSPENDED)):
        if status is allowed:
            check(status)
        else:
            with pytest.raises(IllegalTransition):
                check(status)


def test_extension_decisions_need_a_pending_request_on_a_dispatched_case() -> None:
    dispatch.check_can_decide_extension(D.DISPATCHED, T0)
    with pytest.raises(IllegalTransition):
        dispatch.check_can_decide_extension(D.DISPATCHED, None)
    with pytest.raises(IllegalTransition):
        dispatch.check_can_decide_extension(D.SUSPENDED, T0)


def test_an_extension_request_stands_only_for_a_later_deadline_on_a_dispatched_case() -> None:
    assert dispatch.check_extension_request(D.DISPATCHED, T0 + timedelta(days=1), T0)
    assert not dispatch.check_extension_request(D.DISPATCHED, T0, T0)
    assert not dispatch.check_extension_request(D.HANDLED, T0 + timedelta(days=1), T0)
    with pytest.raises(InvalidInput):
        dispatch.check_new_deadline(T0, T0)


@pytest.mark.parametrize("status", list(D))
def test_supervision_goes_to_open_cases_with_a_department(status: dispatch.DispatchStatus) -> None:
    if status in dispatch.CLOCK_RUNNING:
        dispatch.check_can_supervise(status)
    else:
        with pytest.raises(IllegalTransition):
            dispatch.check_can_supervise(status)
