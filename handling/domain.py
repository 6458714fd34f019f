"""The departments' side of a case: sign for it (签收), send it back (回退), ask for more time,
report it handled (处置反馈), and do it again when the check fails (返工).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.core.errors import IllegalTransition, InvalidInput


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


def check_can_accept(status: TaskStatus) -> None:
    """Sign for a case just dispatched."""
    if status is not TaskStatus.ASSIGNED:
        raise IllegalTransition("accept", status.value)


def check_can_return(status: TaskStatus) -> None:
    """A department can send back a case it has not handled yet."""
    if status not in (TaskStatus.ASSIGNED, TaskStatus.ACCEPTED):
        raise IllegalTransition("return", status.value)


def check_can_request_extension(
    status: TaskStatus, pending: datetime | None, requested: datetime, deadline: datetime | None
) -> None:
    """One pending request at a time, for a case still being worked on, for a later deadline."""
    if status not in (TaskStatus.ASSIGNED, TaskStatus.ACCEPTED, TaskStatus.REWORK):
        raise IllegalTransition("ask for more time on", status.value)
    if pending is not None:
        raise IllegalTransition("ask again for more time on", status.value, "an extension request is already pending")
    if deadline is not None and requested <= deadline:
        raise InvalidInput("the requested deadline must be after the current one", {"current_deadline": deadline})


def check_can_report_handled(status: TaskStatus) -> None:
    """Report back only on a case signed for (or sent back for rework)."""
    if status not in (TaskStatus.ACCEPTED, TaskStatus.REWORK):
        raise IllegalTransition("report handled", status.value)
