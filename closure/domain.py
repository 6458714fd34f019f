"""Closure's rules: check on site (核查), close (结案) or send back for rework (返工), reopen
after an unsatisfied callback (回访), cancel (作废).

A case closes on time when it closes no later than its handling deadline, extensions and
suspensions included. An inspector's self-handled problem closes the moment it is filed. A check
is on time when it is answered no later than its check deadline; one still open when its deadline
has passed is reported missed once, as the time passes (closure's check timer), and stays late. A
closed case the citizen is not satisfied with goes back to its department for rework where the
city's rules say so, and closes again through a new check.

Each use case has a decide function here: the case as it stands and the command in, the new
column values of the case row and the events to emit out. The guard and the transition sit
together, so a rule and the change it allows are never apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.core.errors import IllegalTransition, OutOfScope
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseCancelled,
    CaseClosed,
    CaseFiled,
    CaseReopened,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    DeadlineRecomputed,
    EventPayload,
)


class ClosureStatus(StrEnum):
    """A case from closure's point of view."""

    OPEN = "open"  # with dispatch and the department
    CHECKING = "checking"  # reported handled: the inspector checks on site
    CLOSED = "closed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class CaseState:
    """What closure's rules read of a case."""

    status: ClosureStatus
    inspector_id: str
    handling_deadline: datetime | None
    check_deadline: datetime | None
    check_missed_at: datetime | None
    checks: int
    checks_requested: int
    checks_on_time: int
    checks_failed: int
    # The check deadline was counted on a provisional calendar year.
    check_deadline_provisional: bool = False
    # The department of the latest dispatch (None: never dispatched, as a self-handled case).
    department_id: str | None = None
    reopens: int = 0


@dataclass(frozen=True)
class Decision:
    """What a use case does to a case: new values of its row's columns, and the events it emits,
    in order."""

    changes: Mapping[str, Any]
    events: tuple[EventPayload, ...] = ()


# --- guards and predicates ------------------------------------------------------------------


def ensure_can_check(status: ClosureStatus) -> None:
    """A check answers only a check task."""
    if status is not ClosureStatus.CHECKING:
        raise IllegalTransition("check", status.value)


def ensure_can_cancel(status: ClosureStatus) -> None:
    """Anything not yet closed or cancelled can be voided by a shift lead."""
    if status in (ClosureStatus.CLOSED, ClosureStatus.CANCELLED):
        raise IllegalTransition("cancel", status.value)


def ensure_own_check_task(case: CaseState, inspector_id: str | None) -> None:
    """A check task belongs to the inspector of the case's cell, and to nobody else."""
    if case.inspector_id != inspector_id:
        raise OutOfScope("this check task belongs to another inspector")


def may_request_check(status: ClosureStatus) -> bool:
    """A case reported handled gets a check task only while it is open: not one closed on the
    spot, cancelled, or already being checked."""
    return status is ClosureStatus.OPEN


def may_reopen(case: CaseState, verdict: CallbackVerdict, *, reopen_on_unsatisfied: bool) -> bool:
    """An unsatisfied callback reopens the case where the hotline's rule says so, and only a
    closed case with a department to rework it: a case reopened already, or cancelled, stays as it
    is, and so does a self-handled one (nobody was dispatched to do it again)."""
    return (
        reopen_on_unsatisfied
        and verdict is CallbackVerdict.UNSATISFIED
        and case.status is ClosureStatus.CLOSED
        and case.department_id is not None
    )


def is_closed_on_time(closed_at: datetime, handling_deadline: datetime | None) -> bool:
    """按期: closure no later than the deadline in force (a case never dispatched has none)."""
    return handling_deadline is None or closed_at <= handling_deadline


def is_check_on_time(answered_at: datetime, check_deadline: datetime | None) -> bool:
    """按时核查: the inspector answered the check task no later than its deadline."""
    return check_deadline is None or answered_at <= check_deadline


def is_check_missed(case: CaseState, now: datetime) -> bool:
    """The open check task's deadline has passed by ``now`` with no answer, and nobody has said
    so yet. An answer at the very instant of the deadline is still on time, so only a deadline
    strictly before ``now`` is missed."""
    return (
        case.status is ClosureStatus.CHECKING
        and case.check_missed_at is None
        and case.check_deadline is not None
        and case.check_deadline < now
    )


# --- decide functions -----------------------------------------------------------------------


def decide_filing(filed: CaseFiled, inspector_id: str, now: datetime) -> Decision:
    """A filed case (立案): the whole new row, with the inspector of its cell. A problem the
    inspector fixed on the spot (self-handled) closes at once, on time: it never had a deadline."""
    opened = Decision(
        {
            "case_number": filed.case_number,
            "category_code": filed.category_code,
            "source": filed.source.value,
            "cell_id": filed.place.cell_id,
            "inspector_id": inspector_id,
            "status": ClosureStatus.OPEN,
            "checks": 0,
            "checks_requested": 0,
            "checks_on_time": 0,
            "checks_failed": 0,
        }
    )
    if not filed.self_handled:
        return opened
    closed = _close(now, None, closed_by=filed.filed_by, self_handled=True)
    return Decision({**opened.changes, **closed.changes}, closed.events)


def decide_deadline(
    handling_deadline: datetime, department_id: str | None = None, *, provisional: bool = False
) -> Decision:
    """The handling deadline in force (dispatched, extended, resumed, recomputed), which decides
    whether the closure is on time; a dispatch also names the department."""
    changes: dict[str, Any] = {"handling_deadline": handling_deadline, "handling_deadline_provisional": provisional}
    if department_id is not None:
        changes["department_id"] = department_id
    return Decision(changes)


def decide_check_request(
    case: CaseState, *, result: str, check_deadline: datetime, now: datetime, provisional: bool = False
) -> Decision:
    """The department reported the case handled: a check task to the cell's inspector, due at
    ``check_deadline`` (``provisional`` when counted on a provisional calendar year)."""
    if not may_request_check(case.status):
        raise IllegalTransition("request a check of", case.status.value)
    return Decision(
        {
            "status": ClosureStatus.CHECKING,
            "handled_at": now,
            "handling_result": result,
            "check_deadline": check_deadline,
            "check_deadline_provisional": provisional,
            "checks_requested": case.checks_requested + 1,
        },
        (CheckRequested(inspector_id=case.inspector_id, check_deadline=check_deadline, provisional=provisional),),
    )


def decide_check_recompute(case: CaseState, check_deadline: datetime, *, provisional: bool) -> Decision:
    """The open check's deadline, counted on a provisional calendar year, counted again once the
    calendar learnt an official year: saved and told when it moved or became official. A check
    reported missed keeps its deadline: it came due, late, and stays so."""
    if (
        case.status is not ClosureStatus.CHECKING
        or case.check_missed_at is not None
        or case.check_deadline is None
        or (check_deadline, provisional) == (case.check_deadline, case.check_deadline_provisional)
    ):
        return Decision({})
    recomputed = DeadlineRecomputed(
        kind=DeadlineKind.CHECK, deadline=check_deadline, provisional=provisional, previous=case.check_deadline
    )
    return Decision({"check_deadline": check_deadline, "check_deadline_provisional": provisional}, (recomputed,))


def decide_check(
    case: CaseState,
    *,
    inspector_id: str | None,
    closed_by: str,
    passed: bool,
    note: str | None,
    photos: Sequence[str],
    now: datetime,
) -> Decision:
    """The inspector's verdict on site (核查): passed closes the case (结案), on time or not;
    failed sends it back for rework (返工). Either way the check counts, on time or not."""
    ensure_own_check_task(case, inspector_id)
    ensure_can_check(case.status)
    on_time = case.check_missed_at is None and is_check_on_time(now, case.check_deadline)
    counts = {
        "checks": case.checks + 1,
        "checks_on_time": case.checks_on_time + int(on_time),
        "check_missed_at": None,
    }
    if passed:
        verdict = CheckPassed(inspector_id=case.inspector_id, note=note, photos=list(photos))
        closed = _close(now, case.handling_deadline, closed_by=closed_by, self_handled=False)
        return Decision({**counts, **closed.changes}, (verdict, *closed.events))
    failed = CheckFailed(inspector_id=case.inspector_id, reason=note or "not solved", photos=list(photos))
    changes = {**counts, "status": ClosureStatus.OPEN, "check_deadline": None, "checks_failed": case.checks_failed + 1}
    return Decision(changes, (failed,))


def decide_check_missed(case: CaseState, now: datetime) -> Decision:
    """The check timer found the open check task past its deadline at ``now``, unanswered: say so
    once, so the assessment sees the check come due (and late) as time passes."""
    if not is_check_missed(case, now):
        raise IllegalTransition(
            "report a missed check of", case.status.value, "the case has no unanswered check past its deadline"
        )
    assert case.check_deadline is not None  # a missed check has one
    return Decision({"check_missed_at": now}, (DeadlineMissed(kind=DeadlineKind.CHECK, deadline=case.check_deadline),))


# The reason a reopen gives when the citizen's verdict came without a note.
UNSATISFIED_WITHOUT_NOTE = "the citizen was not satisfied (回访不满意)"


def decide_callback(case: CaseState, callback: CallbackRecorded, *, reopen_on_unsatisfied: bool) -> Decision:
    """The hotline's callback to the citizen (回访): an unsatisfied verdict sends the closed case
    back to the department that closed it for rework (返工), open again until it is handled,
    checked and closed anew; any other verdict, or a rule that says not to, changes nothing here
    (the assessment counts every verdict)."""
    if not may_reopen(case, callback.verdict, reopen_on_unsatisfied=reopen_on_unsatisfied):
        return Decision({})
    reopened = CaseReopened(department_id=case.department_id, reason=callback.note or UNSATISFIED_WITHOUT_NOTE)
    changes = {"status": ClosureStatus.OPEN, "closed_at": None, "on_time": None, "reopens": case.reopens + 1}
    return Decision(changes, (reopened,))


def decide_cancel(status: ClosureStatus, *, cancelled_by: str, reason: str) -> Decision:
    """A shift lead voids the case (作废)."""
    ensure_can_cancel(status)
    return Decision({"status": ClosureStatus.CANCELLED}, (CaseCancelled(cancelled_by=cancelled_by, reason=reason),))


def _close(now: datetime, handling_deadline: datetime | None, *, closed_by: str, self_handled: bool) -> Decision:
    on_time = is_closed_on_time(now, handling_deadline)
    closed = CaseClosed(
        closed_by=closed_by, on_time=on_time, handling_deadline=handling_deadline, self_handled=self_handled
    )
    return Decision({"status": ClosureStatus.CLOSED, "closed_at": now, "on_time": on_time}, (closed,))
