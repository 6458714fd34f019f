"""Intake's rules for what a hotline sends signed: a nonce used once (a Standard Webhooks retry
answered as the first time), a callback only on a closed case of a filed work order, and a
reopened case back in rework in the case file."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from intake import domain as intake
from shared.core.errors import IllegalTransition
from shared.events.catalogue import CallbackRecorded, CallbackVerdict, CaseClosed, CaseReopened, CheckFailed
from shared.integration.signing import ReplayedNonce, Scheme

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
CASE = UUID("01900000-0000-7000-8000-000000000001")
S = intake.CaseStatus


def test_a_nonce_never_seen_is_a_new_request() -> None:
    for scheme in Scheme:
        assert not intake.is_retry(scheme, None, "a" * 64)


def test_a_webhook_id_again_with_its_body_is_a_retry_with_another_a_replay() -> None:
    assert intake.is_retry(Scheme.STANDARD_WEBHOOKS, "a" * 64, "a" * 64)
    with pytest.raises(ReplayedNonce, match="webhook-id"):
        intake.is_retry(Scheme.STANDARD_WEBHOOKS, "a" * 64, "b" * 64)


def test_an_app_key_nonce_again_is_a_replay_whatever_the_body() -> None:
    for body in ("a" * 64, "b" * 64):
        with pytest.raises(ReplayedNonce, match="X-Nonce"):
            intake.is_retry(Scheme.APP_KEY, "a" * 64, body)


def work_order(report: intake.ReportStatus, case: intake.CaseStatus | None) -> intake.WorkOrderCase:
    return intake.WorkOrderCase(CASE, report, case, None)


def decide(found: intake.WorkOrderCase) -> intake.Callback:
    return intake.decide_callback(
        found,
        hotline_id="12345",
        work_order="GD-1",
        verdict=CallbackVerdict.UNSATISFIED,
        note="没修好",
        nonce="msg_1",
        at=T0,
    )


def test_a_callback_on_a_closed_case_is_recorded() -> None:
    callback = decide(work_order(intake.ReportStatus.FILED, S.CLOSED))
    assert callback.event == CallbackRecorded(
        hotline_id="12345", work_order="GD-1", verdict=CallbackVerdict.UNSATISFIED, note="没修好"
    )
    assert callback.row == {
        "case_id": CASE,
        "hotline_id": "12345",
        "work_order": "GD-1",
        "nonce": "msg_1",
        "callback_id": None,
        "verdict": "unsatisfied",
        "note": "没修好",
        "received_at": T0,
    }


@pytest.mark.parametrize("status", sorted(set(S) - {S.CLOSED}))
def test_a_callback_on_a_case_not_closed_is_refused(status: intake.CaseStatus) -> None:
    with pytest.raises(IllegalTransition) as refused:
        decide(work_order(intake.ReportStatus.FILED, status))
    assert refused.value.details == {"action": "record a callback for", "current_state": status.value}


@pytest.mark.parametrize(
    ("report", "says"),
    [
        (intake.ReportStatus.VERIFYING, "never filed"),
        (intake.ReportStatus.REJECTED, "never filed"),
        (intake.ReportStatus.MERGED, "merged into case"),
    ],
)
def test_a_callback_on_a_work_order_that_is_no_case_of_its_own_is_refused(
    report: intake.ReportStatus, says: str
) -> None:
    with pytest.raises(IllegalTransition, match=says):
        decide(work_order(report, None))


def test_a_callback_again_under_its_nonce_must_be_the_same() -> None:
    recorded = decide(work_order(intake.ReportStatus.FILED, S.CLOSED)).row
    intake.ensure_callback_resend_of(recorded, "GD-1", CallbackVerdict.UNSATISFIED, "没修好")
    with pytest.raises(ReplayedNonce):
        intake.ensure_callback_resend_of(recorded, "GD-1", CallbackVerdict.SATISFIED, "没修好")


def test_a_reopen_takes_a_closed_case_back_to_rework_as_a_failed_check_does() -> None:
    closed = intake.CaseState(S.CLOSED, None)
    after, changes = intake.follow(closed, CaseReopened(department_id="d", reason="回访不满意"), T0)
    assert after == intake.CaseState(S.REWORK, None)
    assert changes == {"status": S.REWORK, "closed_at": None, "on_time": None}
    assert intake.is_case_row_event(CaseReopened(department_id="d", reason="r"))
    # From there it follows the lifecycle again, and closes again.
    after, _ = intake.follow(after, CheckFailed(inspector_id="i", reason="r"), T0)
    after, changes = intake.follow(after, CaseClosed(closed_by="lead", on_time=False), T0)
    assert (after.status, changes["closed_at"]) == (S.CLOSED, T0)


def test_a_cancelled_case_is_never_reopened() -> None:
    cancelled = intake.CaseState(S.CANCELLED, None)
    assert intake.follow(cancelled, CaseReopened(department_id=None, reason="r"), T0) == (cancelled, {})


def test_the_callback_shows_the_hotline_as_who_acted_and_its_note_as_why() -> None:
    step = intake.timeline_step(
        CASE, CallbackRecorded(hotline_id="12345", work_order="GD-1", verdict=CallbackVerdict.SATISFIED, note="好")
    )
    assert (step.actor, step.reason, step.details["verdict"]) == ("12345", "好", "satisfied")
