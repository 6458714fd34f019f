"""The departments' side of a case: sign for it (签收), send it back (回退), ask for more time,
report it handled (处置反馈), and do it again when the check fails (返工).

Every rule sits beside the transition it guards: a decide function takes the task as it stands
and a command (or another service's event) and returns the changes to the task's row, with the
event to emit for a department's action. The handlers only load, decide, save and emit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from shared.city.calendar import ends_later
from shared.core.errors import IllegalTransition, InvalidInput
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CaseReturned,
    EventPayload,
    ExtensionRequested,
)


class TaskStatus(StrEnum):
    """A case as its department sees it."""

    REPORTED = "reported"  # known from the report, not (yet) dispatched to anyone
    ASSIGNED = "assigned"  # dispatched, waiting to be signed for
    ACCEPTED = "accepted"
    HANDLED = "handled"  # reported back, waiting for the check
    REWORK = "rework"  # the check failed: handle it again
    RETURNED = "returned"
    SUSPENDED = "suspended"
    CLOSED = "closed"
    CANCELLED = "cancelled"


# What a department still has to act on: its inbox.
IN_INBOX = frozenset({TaskStatus.ASSIGNED, TaskStatus.ACCEPTED, TaskStatus.REWORK, TaskStatus.SUSPENDED})

# New column values of a task's row.
Changes = dict[str, Any]

E = TypeVar("E", bound=EventPayload)


@dataclass(frozen=True)
class Task:
    """What the rules of a department's actions read of a case in its inbox."""

    status: TaskStatus
    department_id: str
    handling_deadline: datetime | None
    extension_deadline: datetime | None  # the deadline asked for while a request is pending
    first_handled_at: datetime | None


@dataclass(frozen=True)
class Decision(Generic[E]):
    """A department's action decided: the task's new column values and the event that says so."""

    changes: Changes
    event: E


# --- guards ----------------------------------------------------------------------------------


def ensure_can_accept(status: TaskStatus) -> None:
    """Sign for a case just dispatched."""
    if status is not TaskStatus.ASSIGNED:
        raise IllegalTransition("accept", status.value)


def ensure_can_return(status: TaskStatus) -> None:
    """A department can send back a case it has not handled yet."""
    if status not in (TaskStatus.ASSIGNED, TaskStatus.ACCEPTED):
        raise IllegalTransition("return", status.value)


def ensure_can_request_extension(
    status: TaskStatus, pending: datetime | None, requested: datetime, deadline: datetime | None
) -> None:
    """One pending request at a time, for a case still being worked on, for a later deadline."""
    if status not in (TaskStatus.ASSIGNED, TaskStatus.ACCEPTED, TaskStatus.REWORK):
        raise IllegalTransition("ask for more time on", status.value)
    if pending is not None:
        raise IllegalTransition("ask again for more time on", status.value, "an extension request is already pending")
    if not ends_later(requested, deadline):
        raise InvalidInput("the requested deadline must be after the current one", {"current_deadline": deadline})


def ensure_can_report_handled(status: TaskStatus) -> None:
    """Report back only on a case signed for (or sent back for rework)."""
    if status not in (TaskStatus.ACCEPTED, TaskStatus.REWORK):
        raise IllegalTransition("report handled", status.value)


# --- the department's actions ----------------------------------------------------------------


def accept(task: Task, accepted_by: str) -> Decision[CaseAccepted]:
    """Sign for the case (签收)."""
    ensure_can_accept(task.status)
    return Decision(
        {"status": TaskStatus.ACCEPTED, "accepted_by": accepted_by},
        CaseAccepted(department_id=task.department_id, accepted_by=accepted_by),
    )


def return_case(task: Task, returned_by: str, reason: str) -> Decision[CaseReturned]:
    """Send the case back as not the department's (回退); a dispatcher re-dispatches it."""
    ensure_can_return(task.status)
    return Decision(
        {"status": TaskStatus.RETURNED},
        CaseReturned(department_id=task.department_id, returned_by=returned_by, reason=reason),
    )


def request_extension(
    task: Task, requested_by: str, requested_deadline: datetime, reason: str
) -> Decision[ExtensionRequested]:
    """Ask the shift lead for more time (申请延期): the request stays pending until answered."""
    ensure_can_request_extension(task.status, task.extension_deadline, requested_deadline, task.handling_deadline)
    return Decision(
        {"extension_deadline": requested_deadline},
        ExtensionRequested(
            department_id=task.department_id,
            requested_by=requested_by,
            requested_deadline=requested_deadline,
            reason=reason,
        ),
    )


def report_handled(task: Task, handled_by: str, result: str, photos: list[str], now: datetime) -> Decision[CaseHandled]:
    """Report the problem handled, with photos (处置反馈). ``handled_at`` is this report's time;
    ``first_handled_at`` stays the first report's, whatever rework or re-dispatch came after.
    """
    ensure_can_report_handled(task.status)
    return Decision(
        {
            "status": TaskStatus.HANDLED,
            "result": result,
            "result_photos": photos,
            "handled_at": now,
            "first_handled_at": task.first_handled_at or now,
        },
        CaseHandled(department_id=task.department_id, handled_by=handled_by, result=result, photos=photos),
    )


# --- following the case: what other services' events do to the task ---------------------------


def dispatched(data: CaseDispatched, at: datetime) -> Changes:
    """A new task in the department's inbox (and out of the previous department's): whatever a
    previous department did with it starts again.
    """
    return {
        "status": TaskStatus.ASSIGNED,
        "department_id": data.department_id,
        "dispatched_at": at,
        "handling_deadline": data.handling_deadline,
        "handling_deadline_provisional": data.provisional,
        "extension_deadline": None,
        "accepted_by": None,
        "result": None,
        "result_photos": None,
        "handled_at": None,
        "rework_reason": None,
    }


def extension_approved(handling_deadline: datetime) -> Changes:
    """The shift lead granted more time: the deadline moves to the date granted (a date, never
    provisional) and the request is answered."""
    return {"handling_deadline": handling_deadline, "handling_deadline_provisional": False, "extension_deadline": None}


def deadline_recomputed(handling_deadline: datetime, *, provisional: bool) -> Changes:
    """Dispatch counted a deadline counted on a provisional calendar year again, once the year's
    official days were loaded (or a correction of them): the deadline in force now."""
    return {"handling_deadline": handling_deadline, "handling_deadline_provisional": provisional}


def extension_denied() -> Changes:
    """The request is answered: no longer pending; the deadline stands."""
    return {"extension_deadline": None}


def suspended(status: TaskStatus) -> Changes:
    """Nothing to do while suspended; remember where the task was."""
    return {"status_before_suspension": status, "status": TaskStatus.SUSPENDED}


def resumed(
    status: TaskStatus, before_suspension: TaskStatus | None, handling_deadline: datetime, *, provisional: bool = False
) -> Changes:
    """Back where the task was before the suspension, with the deadline moved by the time the
    clock stood still. Dispatch resumes only a suspended case; a task with no suspension to
    come back from keeps its status.
    """
    return {
        **deadline_recomputed(handling_deadline, provisional=provisional),
        "extension_deadline": None,
        "status": before_suspension or status,
    }


def check_failed(reason: str) -> Changes:
    """Back in the inbox for rework (返工), with the inspector's reason."""
    return {"status": TaskStatus.REWORK, "rework_reason": reason}


def reopened(status: TaskStatus, reason: str) -> Changes:
    """A closed case reopened after an unsatisfied callback: back in the inbox of the department
    that closed it for rework (返工), as after a failed check, with the citizen's reason. A request
    for more time still pending at the closure lapsed with it (dispatch forgot it then). Only a
    closed task comes back; any other is left as it is."""
    if status is not TaskStatus.CLOSED:
        return {}
    return {**check_failed(reason), "extension_deadline": None}


def ended(data: CaseClosed | CaseCancelled) -> Changes:
    """Closed or cancelled: out of every inbox."""
    return {"status": TaskStatus.CLOSED if isinstance(data, CaseClosed) else TaskStatus.CANCELLED}
