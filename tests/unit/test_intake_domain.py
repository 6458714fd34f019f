"""Every transition of intake's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from intake import domain as intake
from shared.city.calendar import Deadline
from shared.city.model import Category
from shared.core.errors import IllegalTransition, InvalidInput, OutOfScope
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
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
    ExtensionApproved,
    ExtensionDenied,
    GridPlace,
    ReportMerged,
    ReportRejected,
    ReportSource,
    ReportVerified,
    VerificationRequested,
)

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


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
    for check in (intake.ensure_can_file, intake.ensure_can_reject):
        if open_:
            check(status)
        else:
            with pytest.raises(IllegalTransition) as error:
                check(status)
            assert error.value.details == {
                "action": check.__name__.removeprefix("ensure_can_"),
                "current_state": status,
            }


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_only_a_report_being_verified_takes_a_verification(status: intake.ReportStatus) -> None:
    if status is intake.ReportStatus.VERIFYING:
        intake.ensure_can_verify(status)
    else:
        with pytest.raises(IllegalTransition):
            intake.ensure_can_verify(status)


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


@pytest.mark.parametrize("status", list(intake.CaseStatus))
def test_a_closed_or_cancelled_case_file_stays_so_whatever_late_event_arrives(status: intake.CaseStatus) -> None:
    ended = status in (intake.CaseStatus.CLOSED, intake.CaseStatus.CANCELLED)
    assert intake.may_follow_events(status) is not ended


# --- decide functions -------------------------------------------------------------------------

CATEGORY = Category(
    code="01-01-04",
    name="井盖缺失",
    name_en="Missing manhole cover",
    family=CategoryFamily.COMPONENT,
    major_code="01-01",
    major_name="公用设施",
    major_name_en="Public utilities",
    urgent=True,
    time_basis="calendar",
    filing=10,
    dispatch=10,
    handling=120,
    check=60,
)
PLACE = GridPlace(cell_id="c-1", community_id="m-1", street_id="s-1", district_id="d-1")
REPORT_ID = UUID("0190b1a6-0000-7000-8000-000000000001")
CASE_ID = UUID("0190b1a6-0000-7000-8000-000000000002")


def report(status: intake.ReportStatus = intake.ReportStatus.VERIFYING) -> intake.Report:
    return intake.Report.of(
        {
            "id": REPORT_ID,
            "status": status.value,
            "source": "hotline",
            "category_code": CATEGORY.code,
            "cell_id": PLACE.cell_id,
            "lon": 122.2,
            "lat": 30.0,
            "received_at": T0,
            "self_handled": False,
            "external_ref": "WO-1",
            "verifier_id": "insp-001",
        }
    )


def terms() -> intake.FilingTerms:
    return intake.FilingTerms(
        case_number="2026-11-000007",
        category=CATEGORY,
        place=PLACE,
        inspector_id="insp-001",
        filing_deadline=Deadline(T0 + timedelta(minutes=10), provisional=False),
        dispatch_deadline=Deadline(T0 + timedelta(minutes=40), provisional=True),
        filed_by="operator1",
        at=T0 + timedelta(minutes=30),
    )


def test_a_report_just_arrived_reads_without_a_verifier() -> None:
    row = {"id": REPORT_ID, "status": "filed", "source": "inspector", "category_code": "01-01-04", "cell_id": "c-1"}
    row |= {"lon": 1.0, "lat": 2.0, "received_at": T0, "self_handled": True, "external_ref": None}
    arrived = intake.Report.of(row)
    assert arrived.verifier_id is None
    assert arrived.status is intake.ReportStatus.FILED
    assert arrived.source is ReportSource.INSPECTOR


def test_only_an_inspector_may_handle_a_problem_on_the_spot() -> None:
    intake.ensure_may_self_handle(ReportSource.INSPECTOR, True)
    for source in ReportSource:
        intake.ensure_may_self_handle(source, False)
    for source in (ReportSource.HOTLINE, ReportSource.PUBLIC, ReportSource.VIDEO):
        with pytest.raises(InvalidInput):
            intake.ensure_may_self_handle(source, True)


@pytest.mark.parametrize("source", list(ReportSource))
def test_a_report_that_duplicates_nothing_starts_where_its_source_says(source: ReportSource) -> None:
    arrival = intake.decide_arrival(source, self_handled=False, duplicate=None, at=T0)
    assert arrival.status is intake.initial_status(source)
    assert arrival.changes == {"status": intake.initial_status(source)}
    assert arrival.merged is None


def test_a_duplicate_is_merged_into_the_open_case_it_repeats() -> None:
    case = intake.OpenCase(str(CASE_ID), "01-01-04", 122.2, 30.0, T0)
    arrival = intake.decide_arrival(ReportSource.HOTLINE, self_handled=False, duplicate=(case, 12.345), at=T0)
    assert arrival.status is intake.ReportStatus.MERGED
    assert arrival.changes == {"status": intake.ReportStatus.MERGED, "merged_into": CASE_ID, "decided_at": T0}
    assert arrival.merged == ReportMerged(into_case_id=CASE_ID, distance_m=12.3)


def test_a_problem_handled_on_the_spot_is_never_merged() -> None:
    case = intake.OpenCase(str(CASE_ID), "01-01-04", 122.2, 30.0, T0)
    arrival = intake.decide_arrival(ReportSource.INSPECTOR, self_handled=True, duplicate=(case, 3.0), at=T0)
    assert arrival.status is intake.ReportStatus.FILED
    assert arrival.merged is None


def test_a_verification_request_names_the_inspector_and_the_due_time() -> None:
    due = T0 + timedelta(hours=2)
    changes, event = intake.decide_verification_request("insp-001", Deadline(due, provisional=True))
    assert changes == {"verifier_id": "insp-001", "verification_due_at": due, "verification_due_provisional": True}
    assert event == VerificationRequested(inspector_id="insp-001", due_at=due, provisional=True)


def test_a_waiting_verification_with_a_provisional_due_time_is_recomputed() -> None:
    due, later = T0 + timedelta(hours=2), T0 + timedelta(days=1)
    waiting = {"status": "verifying", "verification_due_at": due, "verification_due_provisional": True}
    decision = intake.decide_verification_recompute(waiting, Deadline(later, provisional=False))
    assert decision == (
        {"verification_due_at": later, "verification_due_provisional": False},
        DeadlineRecomputed(kind=DeadlineKind.VERIFICATION, deadline=later, provisional=False, previous=due),
    )
    # Counted the same again (the official year is not loaded yet), or already answered: nothing.
    assert intake.decide_verification_recompute(waiting, Deadline(due, provisional=True)) is None
    answered = waiting | {"status": "filed"}
    assert intake.decide_verification_recompute(answered, Deadline(later, provisional=False)) is None


def test_filing_numbers_the_report_opens_the_case_file_and_tells_every_service() -> None:
    filing = intake.decide_filing(report(), terms())
    at = T0 + timedelta(minutes=30)
    assert (filing.case_id, filing.at) == (REPORT_ID, at)
    assert filing.report_changes == {
        "status": intake.ReportStatus.FILED,
        "case_number": "2026-11-000007",
        "decided_by": "operator1",
        "decided_at": at,
        "filing_deadline": T0 + timedelta(minutes=10),
        "filing_deadline_provisional": False,
    }
    assert filing.case_row == {
        "id": REPORT_ID,
        "case_number": "2026-11-000007",
        "category_code": "01-01-04",
        "source": "hotline",
        "lon": 122.2,
        "lat": 30.0,
        "cell_id": "c-1",
        "street_id": "s-1",
        "district_id": "d-1",
        "status": intake.CaseStatus.FILED,
        "reported_at": T0,
        "filed_at": at,
        "external_ref": "WO-1",
        "updated_at": at,
    }
    assert filing.event == CaseFiled(
        case_number="2026-11-000007",
        category_code="01-01-04",
        family=CategoryFamily.COMPONENT,
        source=ReportSource.HOTLINE,
        place=PLACE,
        filed_by="operator1",
        reported_at=T0,
        filing_deadline=T0 + timedelta(minutes=10),
        dispatch_deadline=T0 + timedelta(minutes=40),
        dispatch_deadline_provisional=True,
        inspector_id="insp-001",
        self_handled=False,
        urgent=True,
    )


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_an_operator_files_only_an_open_report(status: intake.ReportStatus) -> None:
    if status in (intake.ReportStatus.AWAITING_REVIEW, intake.ReportStatus.VERIFYING):
        assert intake.decide_file(report(status), terms()) == intake.decide_filing(report(status), terms())
    else:
        with pytest.raises(IllegalTransition):
            intake.decide_file(report(status), terms())


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_an_operator_rejects_only_an_open_report(status: intake.ReportStatus) -> None:
    reason = intake.RejectionReason.OUT_OF_SCOPE
    if status not in (intake.ReportStatus.AWAITING_REVIEW, intake.ReportStatus.VERIFYING):
        with pytest.raises(IllegalTransition):
            intake.decide_rejection(report(status), reason, "private land", rejected_by="operator1", at=T0)
        return
    rejection = intake.decide_rejection(report(status), reason, "private land", rejected_by="operator1", at=T0)
    assert rejection.changes == {
        "status": intake.ReportStatus.REJECTED,
        "rejection_code": "out_of_scope",
        "rejection_reason": "private land",
        "decided_by": "operator1",
        "decided_at": T0,
    }
    assert rejection.event == ReportRejected(reason_code="out_of_scope", reason="private land", rejected_by="operator1")


def verification(
    subject: intake.Report, inspector_id: str = "insp-001", *, confirmed: bool, note: str | None = None
) -> intake.Verification:
    return intake.decide_verification(
        subject, inspector_id, confirmed=confirmed, note=note, photos=["p1"], decided_by="inspector1", at=T0
    )


def test_a_confirmed_verification_leads_to_filing() -> None:
    answer = verification(report(), confirmed=True, note="seen it")
    assert answer.event == ReportVerified(inspector_id="insp-001", confirmed=True, note="seen it", photos=["p1"])
    assert answer.rejection is None


def test_a_verification_that_finds_nothing_rejects_the_report_as_not_confirmed() -> None:
    answer = verification(report(), confirmed=False)
    assert answer.event == ReportVerified(inspector_id="insp-001", confirmed=False, photos=["p1"])
    assert answer.rejection is not None
    assert answer.rejection.changes["status"] is intake.ReportStatus.REJECTED
    assert answer.rejection.changes["rejection_code"] == "not_confirmed"
    assert answer.rejection.event == ReportRejected(
        reason_code="not_confirmed", reason="not found on site", rejected_by="inspector1"
    )
    with_note = verification(report(), confirmed=False, note="nothing there")
    assert with_note.rejection is not None
    assert with_note.rejection.event.reason == "nothing there"


def test_only_the_verifying_inspector_answers_a_report_being_verified() -> None:
    with pytest.raises(OutOfScope):
        verification(report(), "insp-002", confirmed=True)
    with pytest.raises(IllegalTransition):
        verification(report(intake.ReportStatus.FILED), confirmed=True)


# --- the case file ----------------------------------------------------------------------------

DEADLINE = T0 + timedelta(days=2)
S = intake.CaseStatus


def test_the_case_status_follows_each_lifecycle_event() -> None:
    filed = intake.CaseState(S.FILED, None)
    payloads = [
        (CaseQueuedForCoordination(reason="no rule"), S.COORDINATION),
        (CaseAccepted(department_id="d", accepted_by="u"), S.ACCEPTED),
        (CaseHandled(department_id="d", handled_by="u", result="fixed"), S.HANDLED),
        (CheckRequested(inspector_id="i", check_deadline=DEADLINE), S.CHECKING),
        (CheckFailed(inspector_id="i", reason="still there"), S.REWORK),
        (CaseCancelled(cancelled_by="lead", reason="duplicate"), S.CANCELLED),
    ]
    for payload, status in payloads:
        after, changes = intake.follow(filed, payload, T0)
        assert changes == {"status": status}
        assert after == intake.CaseState(status, None)


def test_a_dispatch_names_the_department_and_its_deadline_and_a_return_clears_it() -> None:
    dispatched = CaseDispatched(department_id="d", dispatched_by="u", handling_deadline=DEADLINE, attempt=1)
    after, changes = intake.follow(intake.CaseState(S.FILED, None), dispatched, T0)
    assert changes == {
        "status": S.DISPATCHED,
        "department_id": "d",
        "handling_deadline": DEADLINE,
        "handling_deadline_provisional": False,
    }
    after, changes = intake.follow(after, CaseReturned(department_id="d", returned_by="u", reason="not ours"), T0)
    assert changes == {"status": S.RETURNED, "department_id": None}
    assert after.status is S.RETURNED


def test_a_suspension_remembers_the_status_a_resumption_goes_back_to() -> None:
    suspended, changes = intake.follow(
        intake.CaseState(S.ACCEPTED, None), CaseSuspended(suspended_by="u", reason="r"), T0
    )
    assert changes == {"status_before_suspension": S.ACCEPTED, "status": S.SUSPENDED}
    assert suspended == intake.CaseState(S.SUSPENDED, S.ACCEPTED)
    resumed, changes = intake.follow(suspended, CaseResumed(resumed_by="u", handling_deadline=DEADLINE), T0)
    assert changes == {"status": S.ACCEPTED, "handling_deadline": DEADLINE, "handling_deadline_provisional": False}
    assert resumed.status is S.ACCEPTED


def test_an_extension_moves_the_deadline_and_a_closure_records_when_and_whether_on_time() -> None:
    accepted = intake.CaseState(S.ACCEPTED, None)
    after, changes = intake.follow(accepted, ExtensionApproved(approved_by="lead", handling_deadline=DEADLINE), T0)
    assert (after, changes) == (accepted, {"handling_deadline": DEADLINE, "handling_deadline_provisional": False})
    recomputed = DeadlineRecomputed(kind=DeadlineKind.HANDLING, deadline=DEADLINE, provisional=True, previous=T0)
    after, changes = intake.follow(accepted, recomputed, T0)
    assert (after, changes) == (accepted, {"handling_deadline": DEADLINE, "handling_deadline_provisional": True})
    after, changes = intake.follow(accepted, CaseClosed(closed_by="lead", on_time=False), T0)
    assert changes == {"status": S.CLOSED, "closed_at": T0, "on_time": False}
    assert after.status is S.CLOSED


@pytest.mark.parametrize("ended", [S.CLOSED, S.CANCELLED])
def test_late_events_never_move_an_ended_case(ended: intake.CaseStatus) -> None:
    case = intake.CaseState(ended, None)
    late = [
        CaseAccepted(department_id="d", accepted_by="u"),
        CaseSuspended(suspended_by="u", reason="r"),
        CaseResumed(resumed_by="u", handling_deadline=DEADLINE),
        CheckFailed(inspector_id="i", reason="r"),
    ]
    for payload in late:
        after, changes = intake.follow(case, payload, T0)
        assert after == case
        assert "status" not in changes
        assert "status_before_suspension" not in changes


def test_only_lifecycle_events_touch_the_case_row() -> None:
    touching = [
        CaseDispatched(department_id="d", dispatched_by="u", handling_deadline=DEADLINE, attempt=1),
        CaseResumed(resumed_by="u", handling_deadline=DEADLINE),
        ExtensionApproved(approved_by="lead", handling_deadline=DEADLINE),
        DeadlineRecomputed(kind=DeadlineKind.HANDLING, deadline=DEADLINE, provisional=False, previous=T0),
        CaseClosed(closed_by="lead", on_time=True),
    ]
    assert all(intake.is_case_row_event(payload) for payload in touching)
    # A recomputed check deadline is closure's: the case file's row has none.
    check = DeadlineRecomputed(kind=DeadlineKind.CHECK, deadline=DEADLINE, provisional=False, previous=T0)
    assert not intake.is_case_row_event(check)
    assert not intake.is_case_row_event(ReportRejected(reason_code="invalid", reason="r", rejected_by="u"))
    assert not intake.is_case_row_event(ExtensionDenied(denied_by="lead", reason="r"))
    assert not intake.is_case_row_event(CheckPassed(inspector_id="i"))


def test_a_timeline_step_shows_who_acted_and_why() -> None:
    step = intake.timeline_step(CASE_ID, CaseReturned(department_id="d", returned_by="clerk", reason="not ours"))
    assert step.case_ids == (CASE_ID,)
    assert (step.actor, step.reason) == ("clerk", "not ours")
    assert step.details == {"department_id": "d", "returned_by": "clerk", "reason": "not ours"}
    step = intake.timeline_step(CASE_ID, CheckPassed(inspector_id="insp-001", note="fine"))
    assert (step.actor, step.reason) == ("insp-001", "fine")
    step = intake.timeline_step(CASE_ID, CaseHandled(department_id="d", handled_by="clerk", result="fixed"))
    assert (step.actor, step.reason) == ("clerk", "fixed")
    step = intake.timeline_step(CASE_ID, DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=DEADLINE))
    assert (step.actor, step.reason) == ("system", None)


def test_a_merged_report_joins_the_timeline_of_the_case_it_repeats() -> None:
    step = intake.timeline_step(REPORT_ID, ReportMerged(into_case_id=CASE_ID, distance_m=4.0))
    assert step.case_ids == (REPORT_ID, CASE_ID)
    assert step.actor == "system"
