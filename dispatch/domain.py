"""Dispatch's rules: who handles a case, by when, and how that deadline may move.

The handling deadline runs from dispatch until closure — a case handled but not yet checked is
still open — and stops only while the case is suspended (挂账). An approved extension moves it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.core.errors import IllegalTransition, InvalidInput


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
ENDED = frozenset({DispatchStatus.CLOSED, DispatchStatus.CANCELLED})


def check_can_dispatch(status: DispatchStatus, department_id: str, current_department: str | None) -> None:
    """A dispatcher (re-)dispatches a queued or returned case, or moves one not yet handled."""
    if status not in (DispatchStatus.COORDINATION, DispatchStatus.RETURNED, DispatchStatus.DISPATCHED):
        raise IllegalTransition("dispatch", status.value)
    if status is DispatchStatus.DISPATCHED and department_id == current_department:
        raise IllegalTransition("re-dispatch to the same department", status.value)


def check_can_decide_extension(status: DispatchStatus, pending: datetime | None) -> None:
    """Only a pending request on a case still with its department can be approved or denied."""
    if pending is None:
        raise IllegalTransition("decide an extension without a pending request for", status.value)
    if status is not DispatchStatus.DISPATCHED:
        raise IllegalTransition("decide an extension of", status.value)


def check_extension_request(status: DispatchStatus, requested: datetime, deadline: datetime | None) -> bool:
    """Whether a department's request can wait for the shift lead (otherwise it is void)."""
    return status is DispatchStatus.DISPATCHED and deadline is not None and requested > deadline


def check_can_suspend(status: DispatchStatus) -> None:
    """A case with a department can be suspended; the clock stops."""
    if status is not DispatchStatus.DISPATCHED:
        raise IllegalTransition("suspend", status.value)


def check_can_resume(status: DispatchStatus) -> None:
    """Only a suspended case resumes."""
    if status is not DispatchStatus.SUSPENDED:
        raise IllegalTransition("resume", status.value)


def check_can_supervise(status: DispatchStatus) -> None:
    """Supervision notices (督办) go to cases still open with a department."""
    if status not in CLOCK_RUNNING:
        raise IllegalTransition("supervise", status.value)


def check_new_deadline(requested: datetime, current: datetime | None) -> None:
    """An extension must move the deadline later."""
    if current is not None and requested <= current:
        raise InvalidInput("an extension must end after the current deadline", {"current_deadline": current})
