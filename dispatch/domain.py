"""Dispatch's rules: who handles a case, by when, and how that deadline may move.

The handling deadline runs from dispatch until closure — a case handled but not yet checked is
still open — and stops only while the case is suspended (挂账). An approved extension moves it.
The case keeps how its deadline was set — the category's limit from dispatch, or the date an
extension granted, and every suspension since — so the deadline can be counted again: on resuming,
and when a provisional calendar year it was counted on gets its official days.

Each ``decide_*`` function takes the case as it stands and a command or another service's fact,
runs the guard, and returns the decision: the new column values of the case row and the events
to publish. A reaction's decision is None when the fact does not concern the case any more (a
stale one): nothing changes and nothing is published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.city.calendar import Deadline, TimeBasis, TimeLimit, WorkingCalendar, ends_later
from shared.city.model import Category
from shared.core.errors import IllegalTransition
from shared.events.catalogue import (
    CaseDispatched,
    CaseFiled,
    CaseQueuedForCoordination,
    CaseResumed,
    CaseSuspended,
    DeadlineKind,
    DeadlineMissed,
    DeadlineRecomputed,
    EventPayload,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    SupervisionIssued,
)

# Who the events say acted when no person did.
ROUTING_ACTOR = "routing-rules"
TIMER_ACTOR = "deadline-timer"


class DispatchStatus(StrEnum):
    """Where a case stands from dispatch's point of view."""

    COORDINATION = "coordination"  # no rule names an owner (权属不清): waits for a dispatcher
    DISPATCHED = "dispatched"  # with a department, signed for or not
    RETURNED = "returned"  # the department sent it back (回退): waits for re-dispatch
    SUSPENDED = "suspended"  # the clock stands still
    HANDLED = "handled"  # the department reported back; waiting for the check
    CLOSED = "closed"
    CANCELLED = "cancelled"


# Where the handling clock runs and a missed deadline is reported.
CLOCK_RUNNING = frozenset({DispatchStatus.DISPATCHED, DispatchStatus.HANDLED})
# Where a deadline still times a step to come: the dispatch deadline until the first dispatch, the
# handling deadline with the department (a suspended case's resumes with it).
DEADLINES_RUNNING = CLOCK_RUNNING | {DispatchStatus.COORDINATION, DispatchStatus.SUSPENDED}

# A case leaves the coordination queue only by hand when no routing rule names an owner.
UNCLEAR_OWNERSHIP = CaseQueuedForCoordination(reason="no routing rule names an owner (权属不清)")

# The pending extension request, cleared whenever the case moves on without a decision on it.
NO_EXTENSION: Mapping[str, None] = {
    "extension_deadline": None,
    "extension_reason": None,
    "extension_requested_by": None,
}

Pauses = tuple[tuple[datetime, datetime], ...]


@dataclass(frozen=True)
class CaseState:
    """What the rules read of a case row."""

    id: UUID
    status: DispatchStatus
    case_number: str
    category_code: str
    department_id: str | None
    attempt: int
    handling_deadline: datetime | None
    suspended_at: datetime | None
    extension_deadline: datetime | None
    supervision_level: int
    filed_at: datetime
    dispatch_deadline: datetime | None
    dispatch_deadline_provisional: bool
    dispatched_at: datetime | None
    handling_deadline_provisional: bool
    # How the handling deadline in force was set: the date an approved extension granted (None:
    # the category's limit from dispatch), and the suspensions since, each (from, to).
    granted_deadline: datetime | None
    pauses: Pauses

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> CaseState:
        """The state of a case row (the columns of dispatch's ``cases`` table)."""
        return cls(
            id=row["id"],
            status=DispatchStatus(row["status"]),
            case_number=row["case_number"],
            category_code=row["category_code"],
            department_id=row["department_id"],
            attempt=row["attempt"],
            handling_deadline=row["handling_deadline"],
            suspended_at=row["suspended_at"],
            extension_deadline=row["extension_deadline"],
            supervision_level=row["supervision_level"],
            filed_at=row["filed_at"],
            dispatch_deadline=row["dispatch_deadline"],
            dispatch_deadline_provisional=row["dispatch_deadline_provisional"],
            dispatched_at=row["dispatched_at"],
            handling_deadline_provisional=row["handling_deadline_provisional"],
            granted_deadline=row["granted_deadline"],
            pauses=pauses_of(row["pauses"]),
        )


def pauses_of(stored: Sequence[Sequence[str]]) -> Pauses:
    """The suspensions as the ``pauses`` column stores them: [from, to] pairs in ISO 8601."""
    return tuple((datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in stored)


def stored_pauses(pauses: Pauses) -> list[list[str]]:
    """The suspensions as the ``pauses`` column stores them (JSON has no instants)."""
    return [[start.isoformat(), end.isoformat()] for start, end in pauses]


@dataclass(frozen=True)
class Decision:
    """What a command or a fact does to a case: new column values and the events to publish."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[EventPayload, ...] = ()


@dataclass(frozen=True)
class Dispatch:
    """Send a case to ``department_id`` (派遣) at ``at``; ``rule_id`` when a routing rule chose it."""

    department_id: str
    by: str
    at: datetime
    rule_id: str | None = None


# --- the handling deadline ---------------------------------------------------------------------


def handling_deadline(calendar: WorkingCalendar, case: CaseState, category: Category) -> Deadline:
    """The handling deadline of ``case``, counted from how it was set: the category's handling
    limit from dispatch in its time basis, or the date an extension granted (a date, not a count:
    never provisional), moved by every suspension since by the time the case stood still.
    ``CalendarDataMissing`` (a 503) for a year the calendar cannot serve.
    """
    basis = TimeBasis(category.time_basis)
    if case.granted_deadline is not None:
        deadline = Deadline(case.granted_deadline, provisional=False)
    else:
        assert case.dispatched_at is not None  # a case with a handling deadline was dispatched
        deadline = calendar.deadline(case.dispatched_at, TimeLimit(category.handling, basis))
    for paused_from, paused_to in case.pauses:
        deadline = calendar.shifted(deadline, paused_from, paused_to, basis)
    return deadline


def dispatch_deadline(calendar: WorkingCalendar, case: CaseState, category: Category) -> Deadline:
    """The dispatch limit from filing (按时派遣), as intake counted it when it filed the case."""
    return calendar.deadline(case.filed_at, TimeLimit(category.dispatch, TimeBasis(category.time_basis)))


# --- guards and predicates ---------------------------------------------------------------------


def is_clock_running(status: DispatchStatus) -> bool:
    """Whether the handling deadline runs for a case in ``status``."""
    return status in CLOCK_RUNNING


def ensure_dispatchable(status: DispatchStatus, department_id: str, current_department: str | None) -> None:
    """A dispatcher (re-)dispatches a queued or returned case, or moves one not yet handled."""
    if status not in (DispatchStatus.COORDINATION, DispatchStatus.RETURNED, DispatchStatus.DISPATCHED):
        raise IllegalTransition("dispatch", status.value)
    if status is DispatchStatus.DISPATCHED and department_id == current_department:
        raise IllegalTransition("re-dispatch to the same department", status.value)


def ensure_extension_pending(status: DispatchStatus, pending: datetime | None) -> datetime:
    """Only a pending request on a case still with its department can be approved or denied;
    the date it asks for."""
    if pending is None:
        raise IllegalTransition("decide an extension without a pending request for", status.value)
    if status is not DispatchStatus.DISPATCHED:
        raise IllegalTransition("decide an extension of", status.value)
    return pending


def may_hold_extension(status: DispatchStatus, requested: datetime, deadline: datetime | None) -> bool:
    """Whether a department's request can wait for the shift lead (otherwise it is void): the
    case is with the department and the date asked for ends after the deadline in force."""
    return status is DispatchStatus.DISPATCHED and deadline is not None and ends_later(requested, deadline)


def ensure_suspendable(status: DispatchStatus) -> None:
    """A case with a department can be suspended; the clock stops."""
    if status is not DispatchStatus.DISPATCHED:
        raise IllegalTransition("suspend", status.value)


def ensure_resumable(status: DispatchStatus) -> None:
    """Only a suspended case resumes."""
    if status is not DispatchStatus.SUSPENDED:
        raise IllegalTransition("resume", status.value)


def ensure_supervisable(status: DispatchStatus) -> None:
    """Supervision notices (督办) go to cases still open with a department."""
    if not is_clock_running(status):
        raise IllegalTransition("supervise", status.value)


# --- decisions ---------------------------------------------------------------------------------


def filed_case(case_id: UUID, data: CaseFiled, filed_at: datetime) -> dict[str, Any] | None:
    """The row a filed case starts with, waiting in coordination until routed; None for a case
    the inspector handled on the spot (nobody to dispatch to)."""
    if data.self_handled:
        return None
    return {
        "id": case_id,
        "case_number": data.case_number,
        "category_code": data.category_code,
        "cell_id": data.place.cell_id,
        "community_id": data.place.community_id,
        "street_id": data.place.street_id,
        "district_id": data.place.district_id,
        "status": DispatchStatus.COORDINATION,
        "department_id": None,
        "attempt": 0,
        "accepted": False,
        "handling_deadline": None,
        "handling_deadline_provisional": False,
        "granted_deadline": None,
        "pauses": [],
        "dispatched_at": None,
        "suspended_at": None,
        "extension_deadline": None,
        "supervision_level": 0,
        "dispatch_deadline": data.dispatch_deadline,
        "dispatch_deadline_provisional": data.dispatch_deadline_provisional,
        "filed_at": filed_at,
    }


def decide_dispatch(case: CaseState, command: Dispatch, calendar: WorkingCalendar, category: Category) -> Decision:
    """Dispatch (派遣) or re-dispatch: a new attempt with a fresh handling deadline from now."""
    ensure_dispatchable(case.status, command.department_id, case.department_id)
    deadline = handling_deadline(
        calendar, replace(case, dispatched_at=command.at, granted_deadline=None, pauses=()), category
    )
    attempt = case.attempt + 1
    changes: dict[str, Any] = {
        "status": DispatchStatus.DISPATCHED,
        "department_id": command.department_id,
        "attempt": attempt,
        "rule_id": command.rule_id,
        "dispatched_at": command.at,
        "accepted": False,
        "handling_deadline": deadline.at,
        "handling_deadline_provisional": deadline.provisional,
        "granted_deadline": None,
        "pauses": [],
        "deadline_missed_at": None,
        **NO_EXTENSION,
    }
    dispatched = CaseDispatched(
        department_id=command.department_id,
        dispatched_by=command.by,
        handling_deadline=deadline.at,
        attempt=attempt,
        rule_id=command.rule_id,
        provisional=deadline.provisional,
    )
    return Decision(changes, (dispatched,))


def decide_return(case: CaseState, department_id: str) -> Decision | None:
    """The department sent the case back (回退): it waits for a dispatcher, without a deadline.
    None for a stale return from a department the case has already left."""
    if case.status is not DispatchStatus.DISPATCHED or case.department_id != department_id:
        return None
    changes: dict[str, Any] = {
        "status": DispatchStatus.RETURNED,
        "department_id": None,
        "handling_deadline": None,
        "handling_deadline_provisional": False,
        "granted_deadline": None,
        "pauses": [],
        "deadline_missed_at": None,
        "accepted": False,
        **NO_EXTENSION,
    }
    return Decision(changes)


def decide_accept(case: CaseState, department_id: str) -> Decision | None:
    """The department signed for the case (签收); None when it is not the case's department."""
    if case.department_id != department_id:
        return None
    return Decision({"accepted": True})


def decide_extension_request(case: CaseState, request: ExtensionRequested) -> Decision:
    """Hold the request for the shift lead, or refuse it at once when it cannot stand (void)."""
    if case.department_id == request.department_id and may_hold_extension(
        case.status, request.requested_deadline, case.handling_deadline
    ):
        held = {
            "extension_deadline": request.requested_deadline,
            "extension_reason": request.reason,
            "extension_requested_by": request.requested_by,
        }
        return Decision(held)
    dispatched = case.status is DispatchStatus.DISPATCHED
    why = "not after the deadline" if dispatched else f"the case is {case.status.value}"
    return Decision(events=(ExtensionDenied(denied_by=ROUTING_ACTOR, reason=f"request void: {why}"),))


def decide_approve_extension(case: CaseState, by: str) -> Decision:
    """Grant the pending request (延期): the deadline moves to the date asked for."""
    deadline = ensure_extension_pending(case.status, case.extension_deadline)
    changes: dict[str, Any] = {
        "handling_deadline": deadline,
        "handling_deadline_provisional": False,
        "granted_deadline": deadline,
        "pauses": [],
        "deadline_missed_at": None,
        **NO_EXTENSION,
    }
    return Decision(changes, (ExtensionApproved(approved_by=by, handling_deadline=deadline, provisional=False),))


def decide_deny_extension(case: CaseState, by: str, reason: str) -> Decision:
    """Refuse the pending request: the deadline stands."""
    ensure_extension_pending(case.status, case.extension_deadline)
    return Decision(dict(NO_EXTENSION), (ExtensionDenied(denied_by=by, reason=reason),))


def decide_suspend(case: CaseState, by: str, reason: str, at: datetime) -> Decision:
    """Stop the clock (挂账/缓办) at ``at``; a pending extension request lapses."""
    ensure_suspendable(case.status)
    changes = {"status": DispatchStatus.SUSPENDED, "suspended_at": at, **NO_EXTENSION}
    return Decision(changes, (CaseSuspended(suspended_by=by, reason=reason),))


def decide_resume(case: CaseState, by: str, at: datetime, calendar: WorkingCalendar, category: Category) -> Decision:
    """Start the clock again at ``at``; the deadline moves by the time it stood still."""
    ensure_resumable(case.status)
    # A suspension stopped a running clock: the case had a deadline, and the suspension a start.
    assert case.suspended_at is not None
    pauses = (*case.pauses, (case.suspended_at, at))
    deadline = handling_deadline(calendar, replace(case, pauses=pauses), category)
    changes = {
        "status": DispatchStatus.DISPATCHED,
        "suspended_at": None,
        "handling_deadline": deadline.at,
        "handling_deadline_provisional": deadline.provisional,
        "pauses": stored_pauses(pauses),
        "deadline_missed_at": None,
    }
    resumed = CaseResumed(resumed_by=by, handling_deadline=deadline.at, provisional=deadline.provisional)
    return Decision(changes, (resumed,))


def decide_recompute(case: CaseState, calendar: WorkingCalendar, category: Category, now: datetime) -> Decision:
    """Count again the deadlines of ``case`` that were counted on a provisional calendar year and
    still time a step to come (the calendar has learnt an official year since): the handling
    deadline while the case is with a department or suspended, the dispatch deadline until the
    first dispatch. Each that moved, or became official, is saved and told as
    ``case.deadline_recomputed``; a handling deadline that moves to ``now`` or later is no longer missed.
    """
    changes: dict[str, Any] = {}
    events: list[EventPayload] = []
    if case.status not in DEADLINES_RUNNING:
        return Decision()
    if case.handling_deadline_provisional and case.handling_deadline is not None:
        handling = handling_deadline(calendar, case, category)
        if handling != (case.handling_deadline, True):
            changes.update(handling_deadline=handling.at, handling_deadline_provisional=handling.provisional)
            if handling.at >= now:
                changes["deadline_missed_at"] = None
            events.append(_recomputed(DeadlineKind.HANDLING, handling, case.handling_deadline))
    if case.dispatch_deadline_provisional and case.dispatch_deadline is not None and case.attempt == 0:
        dispatch = dispatch_deadline(calendar, case, category)
        if dispatch != (case.dispatch_deadline, True):
            changes.update(dispatch_deadline=dispatch.at, dispatch_deadline_provisional=dispatch.provisional)
            events.append(_recomputed(DeadlineKind.DISPATCH, dispatch, case.dispatch_deadline))
    return Decision(changes, tuple(events))


def _recomputed(kind: DeadlineKind, deadline: Deadline, previous: datetime) -> DeadlineRecomputed:
    return DeadlineRecomputed(kind=kind, deadline=deadline.at, provisional=deadline.provisional, previous=previous)


def decide_supervise(case: CaseState, note: str) -> Decision:
    """A supervision notice (督办) by hand; each one raises the level."""
    ensure_supervisable(case.status)
    assert case.department_id is not None  # a case whose clock runs is with a department
    level = case.supervision_level + 1
    notice = SupervisionIssued(department_id=case.department_id, level=level, note=note)
    return Decision({"supervision_level": level}, (notice,))


def decide_handled(case: CaseState, department_id: str) -> Decision | None:
    """The department reported back; the deadline still runs until closure. None unless the
    case is dispatched to that department."""
    if case.status is not DispatchStatus.DISPATCHED or case.department_id != department_id:
        return None
    return Decision({"status": DispatchStatus.HANDLED, **NO_EXTENSION})


def decide_check_failed(case: CaseState) -> Decision | None:
    """Rework (返工): back with the same department, against the same deadline. None unless the
    case was handled."""
    if case.status is not DispatchStatus.HANDLED:
        return None
    return Decision({"status": DispatchStatus.DISPATCHED})


def decide_reopened(case: CaseState) -> Decision | None:
    """A closed case reopened after an unsatisfied callback: rework (返工) by the same department
    against the same deadline, as after a failed check; the deadline timer reports it missed if it
    has passed and was not reported before the closure. None unless the case was closed."""
    if case.status is not DispatchStatus.CLOSED:
        return None
    return Decision({"status": DispatchStatus.DISPATCHED})


def decide_ended(*, cancelled: bool) -> Decision:
    """Closed (结案) or cancelled (作废): nothing more to time."""
    status = DispatchStatus.CANCELLED if cancelled else DispatchStatus.CLOSED
    return Decision({"status": status, **NO_EXTENSION})


def decide_deadline_missed(case: CaseState, now: datetime) -> Decision:
    """The timer found the handling deadline passed at ``now``: report it once, and send the first
    supervision notice unless one went already."""
    assert case.handling_deadline is not None  # the timer reads only cases whose clock runs
    missed = DeadlineMissed(
        kind=DeadlineKind.HANDLING, deadline=case.handling_deadline, department_id=case.department_id
    )
    changes = {"deadline_missed_at": now, "supervision_level": max(case.supervision_level, 1)}
    if case.supervision_level >= 1:
        return Decision(changes, (missed,))
    assert case.department_id is not None  # a case whose clock runs is with a department
    notice = SupervisionIssued(
        department_id=case.department_id,
        level=1,
        note=f"case {case.case_number} is past its handling deadline",
    )
    return Decision(changes, (missed, notice))
