"""Every transition of handling's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handling import domain as handling
from shared.core.errors import IllegalTransition, InvalidInput
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CaseReturned,
    ExtensionRequested,
)

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


H = handling.TaskStatus


def task(status: handling.TaskStatus, **fields: datetime | None) -> handling.Task:
    """A task of department D-1 in ``status``, due at T0 unless told otherwise."""
    values: dict[str, datetime | None] = {
        "handling_deadline": T0,
        "extension_deadline": None,
        "first_handled_at": None,
        **fields,
    }
    return handling.Task(status=status, department_id="D-1", **values)


@pytest.mark.parametrize("status", list(H))
def test_department_actions(status: handling.TaskStatus) -> None:
    cases = (
        (handling.ensure_can_accept, {H.ASSIGNED}),
        (handling.ensure_can_return, {H.ASSIGNED, H.ACCEPTED}),
        (handling.ensure_can_report_handled, {H.ACCEPTED, H.REWORK}),
    )
    for check, allowed in cases:
        if status in allowed:
            check(status)
        else:
            with pytest.raises(IllegalTransition):
                check(status)


def test_one_extension_request_at_a_time_for_a_later_deadline() -> None:
    later = T0 + timedelta(days=2)
    handling.ensure_can_request_extension(H.ACCEPTED, None, later, T0)
    with pytest.raises(IllegalTransition, match="already pending"):
        handling.ensure_can_request_extension(H.ACCEPTED, later, later, T0)
    with pytest.raises(InvalidInput):
        handling.ensure_can_request_extension(H.ACCEPTED, None, T0, T0)
    with pytest.raises(IllegalTransition):
        handling.ensure_can_request_extension(H.HANDLED, None, later, T0)


# --- the decide functions of the department's actions ------------------------------------------


@pytest.mark.parametrize("status", list(H))
def test_accept_signs_for_a_case_just_dispatched(status: handling.TaskStatus) -> None:
    if status is not H.ASSIGNED:
        with pytest.raises(IllegalTransition):
            handling.accept(task(status), "dept-user")
        return
    decision = handling.accept(task(status), "dept-user")
    assert decision.changes == {"status": H.ACCEPTED, "accepted_by": "dept-user"}
    assert decision.event == CaseAccepted(department_id="D-1", accepted_by="dept-user")


@pytest.mark.parametrize("status", list(H))
def test_return_sends_back_a_case_not_handled_yet(status: handling.TaskStatus) -> None:
    if status not in (H.ASSIGNED, H.ACCEPTED):
        with pytest.raises(IllegalTransition):
            handling.return_case(task(status), "dept-user", "not ours")
        return
    decision = handling.return_case(task(status), "dept-user", "not ours")
    assert decision.changes == {"status": H.RETURNED}
    assert decision.event == CaseReturned(department_id="D-1", returned_by="dept-user", reason="not ours")


@pytest.mark.parametrize("status", [H.ASSIGNED, H.ACCEPTED, H.REWORK])
def test_request_extension_leaves_the_request_pending(status: handling.TaskStatus) -> None:
    later = T0 + timedelta(days=2)
    decision = handling.request_extension(task(status), "dept-user", later, "parts on order")
    assert decision.changes == {"extension_deadline": later}
    assert decision.event == ExtensionRequested(
        department_id="D-1", requested_by="dept-user", requested_deadline=later, reason="parts on order"
    )


def test_request_extension_refusals() -> None:
    later = T0 + timedelta(days=2)
    with pytest.raises(IllegalTransition, match="already pending"):
        handling.request_extension(task(H.ACCEPTED, extension_deadline=later), "u", later, "again")
    with pytest.raises(IllegalTransition):
        handling.request_extension(task(H.SUSPENDED), "u", later, "why")
    with pytest.raises(InvalidInput) as refused:
        handling.request_extension(task(H.ACCEPTED), "u", T0, "not later")
    assert refused.value.details == {"current_deadline": T0}
    with pytest.raises(InvalidInput):
        handling.request_extension(task(H.ACCEPTED), "u", T0 - timedelta(hours=1), "earlier")


def test_without_a_deadline_any_requested_date_ends_later() -> None:
    decision = handling.request_extension(task(H.ASSIGNED, handling_deadline=None), "u", T0, "why")
    assert decision.changes == {"extension_deadline": T0}


@pytest.mark.parametrize("status", list(H))
def test_report_handled_on_a_case_signed_for_or_in_rework(status: handling.TaskStatus) -> None:
    if status not in (H.ACCEPTED, H.REWORK):
        with pytest.raises(IllegalTransition):
            handling.report_handled(task(status), "u", "cleared", [], T0)
        return
    decision = handling.report_handled(task(status), "dept-user", "cleared", ["p1"], T0)
    assert decision.changes == {
        "status": H.HANDLED,
        "result": "cleared",
        "result_photos": ["p1"],
        "handled_at": T0,
        "first_handled_at": T0,
    }
    assert decision.event == CaseHandled(department_id="D-1", handled_by="dept-user", result="cleared", photos=["p1"])


def test_report_handled_keeps_the_first_report_time() -> None:
    later = T0 + timedelta(days=1)
    decision = handling.report_handled(task(H.REWORK, first_handled_at=T0), "u", "again", [], later)
    assert decision.changes["handled_at"] == later
    assert decision.changes["first_handled_at"] == T0


# --- the decide functions of following the case -----------------------------------------------


def test_dispatched_starts_the_task_again_in_the_new_department() -> None:
    dispatched = CaseDispatched(department_id="D-2", dispatched_by="d", handling_deadline=T0, attempt=2)
    assert handling.dispatched(dispatched, T0 - timedelta(hours=4)) == {
        "status": H.ASSIGNED,
        "department_id": "D-2",
        "dispatched_at": T0 - timedelta(hours=4),
        "handling_deadline": T0,
        "handling_deadline_provisional": False,
        "extension_deadline": None,
        "accepted_by": None,
        "result": None,
        "result_photos": None,
        "handled_at": None,
        "rework_reason": None,
    }


def test_an_answered_extension_request_is_no_longer_pending() -> None:
    later = T0 + timedelta(days=2)
    assert handling.extension_approved(later) == {
        "handling_deadline": later,
        "handling_deadline_provisional": False,
        "extension_deadline": None,
    }
    assert handling.extension_denied() == {"extension_deadline": None}


@pytest.mark.parametrize("status", [H.REPORTED, H.ASSIGNED, H.ACCEPTED, H.REWORK, H.HANDLED])
def test_a_suspension_remembers_the_status_and_a_resumption_restores_it(status: handling.TaskStatus) -> None:
    assert handling.suspended(status) == {"status_before_suspension": status, "status": H.SUSPENDED}
    later = T0 + timedelta(days=1)
    assert handling.resumed(H.SUSPENDED, status, later, provisional=True) == {
        "handling_deadline": later,
        "handling_deadline_provisional": True,
        "extension_deadline": None,
        "status": status,
    }


def test_a_recomputed_deadline_is_the_one_in_force() -> None:
    later = T0 + timedelta(days=2)
    assert handling.deadline_recomputed(later, provisional=False) == {
        "handling_deadline": later,
        "handling_deadline_provisional": False,
    }


def test_a_resumption_with_no_suspension_to_come_back_from_keeps_the_status() -> None:
    assert handling.resumed(H.ACCEPTED, None, T0)["status"] is H.ACCEPTED


def test_a_failed_check_sends_the_task_back_for_rework() -> None:
    assert handling.check_failed("still there") == {"status": H.REWORK, "rework_reason": "still there"}


@pytest.mark.parametrize("status", list(H))
def test_a_reopened_closed_case_is_back_in_the_inbox_for_rework(status: handling.TaskStatus) -> None:
    changes = handling.reopened(status, "the pipe still leaks")
    if status is H.CLOSED:
        assert changes == {"status": H.REWORK, "rework_reason": "the pipe still leaks", "extension_deadline": None}
        assert H.REWORK in handling.IN_INBOX
    else:
        assert changes == {}


def test_closed_or_cancelled_ends_the_task() -> None:
    closed = CaseClosed(closed_by="lead", on_time=True)
    cancelled = CaseCancelled(cancelled_by="lead", reason="duplicate")
    assert handling.ended(closed) == {"status": H.CLOSED}
    assert handling.ended(cancelled) == {"status": H.CANCELLED}
    assert H.CLOSED not in handling.IN_INBOX
    assert H.CANCELLED not in handling.IN_INBOX
