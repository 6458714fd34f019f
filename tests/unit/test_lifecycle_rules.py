"""Every transition of the lifecycle, legal and illegal, as each service's domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closure import domain as closure
from dispatch import domain as dispatch
from handling import domain as handling
from intake import domain as intake
from shared.errors import IllegalTransition, InvalidInput
from shared.events.catalogue import ReportSource

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


# --- intake ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "status"),
    [
        (ReportSource.INSPECTOR, intake.ReportStatus.FILED),
        (ReportSource.HOTLINE, intake.ReportStatus.VERIFYING),
        (ReportSource.PUBLIC, intake.ReportStatus.VERIFYING),
        (ReportSource.VIDEO, intake.ReportStatus.AWAITING_REVIEW),
    ],
)
def test_where_a_report_starts_depends_on_who_sent_it(source: ReportSource, status: intake.ReportStatus) -> None:
    assert intake.initial_status(source) is status


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_only_open_reports_can_be_filed_or_rejected(status: intake.ReportStatus) -> None:
    open_ = status in (intake.ReportStatus.AWAITING_REVIEW, intake.ReportStatus.VERIFYING)
    for check in (intake.check_can_file, intake.check_can_reject):
        if open_:
            check(status)
        else:
            with pytest.raises(IllegalTransition) as error:
                check(status)
            assert error.value.details == {"action": check.__name__.removeprefix("check_can_"), "current_state": status}


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_only_a_report_being_verified_takes_a_verification(status: intake.ReportStatus) -> None:
    if status is intake.ReportStatus.VERIFYING:
        intake.check_can_verify(status)
    else:
        with pytest.raises(IllegalTransition):
            intake.check_can_verify(status)


def test_duplicates_are_the_nearest_open_case_of_the_category_within_radius_and_window() -> None:
    rule = intake.DuplicateRule(radius_m=50, window=timedelta(hours=72))
    lon, lat = 122.2, 30.0
    metre = 1 / 111_320
    near = intake.OpenCase("near", "01-01-04", lon, lat + 20 * metre, T0)
    nearer = intake.OpenCase("nearer", "01-01-04", lon, lat + 10 * metre, T0)
    other_category = intake.OpenCase("other", "02-01-01", lon, lat, T0)
    too_far = intake.OpenCase("far", "01-01-04", lon, lat + 60 * metre, T0)
    too_old = intake.OpenCase("old", "01-01-04", lon, lat, T0 - timedelta(hours=73))
    found = rule.find("01-01-04", lon, lat, T0, [near, nearer, other_category, too_far, too_old])
    assert found is not None
    assert found[0] is nearer
    assert found[1] == pytest.approx(10, abs=0.1)
    assert rule.find("01-01-04", lon, lat, T0, [other_category, too_far, too_old]) is None


def test_case_numbers_rank_cases_within_their_month() -> None:
    assert intake.case_number("2026-11", 123) == "2026-11-000123"


# --- dispatch ----------------------------------------------------------------------------------

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


# --- handling ----------------------------------------------------------------------------------

H = handling.TaskStatus


@pytest.mark.parametrize("status", list(H))
def test_department_actions(status: handling.TaskStatus) -> None:
    cases = (
        (handling.check_can_accept, {H.ASSIGNED}),
        (handling.check_can_return, {H.ASSIGNED, H.ACCEPTED}),
        (handling.check_can_report_handled, {H.ACCEPTED, H.REWORK}),
    )
    for check, allowed in cases:
        if status in allowed:
            check(status)
        else:
            with pytest.raises(IllegalTransition):
                check(status)


def test_one_extension_request_at_a_time_for_a_later_deadline() -> None:
    later = T0 + timedelta(days=2)
    handling.check_can_request_extension(H.ACCEPTED, None, later, T0)
    with pytest.raises(IllegalTransition, match="already pending"):
        handling.check_can_request_extension(H.ACCEPTED, later, later, T0)
    with pytest.raises(InvalidInput):
        handling.check_can_request_extension(H.ACCEPTED, None, T0, T0)
    with pytest.raises(IllegalTransition):
        handling.check_can_request_extension(H.HANDLED, None, later, T0)


# --- closure -----------------------------------------------------------------------------------

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


@pytest.mark.parametrize("status", list(intake.CaseStatus))
def test_a_closed_or_cancelled_case_file_stays_so_whatever_late_event_arrives(status: intake.CaseStatus) -> None:
    ended = status in (intake.CaseStatus.CLOSED, intake.CaseStatus.CANCELLED)
    assert intake.status_follows_events(status) is not ended
