"""Closure's rules: check on site (核查), close (结案) or send back for rework (返工), cancel (作废).

A case closes on time when it closes no later than its handling deadline, extensions and
suspensions included. An inspector's self-handled problem closes the moment it is filed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.core.errors import IllegalTransition


class ClosureStatus(StrEnum):
    """A case from closure's point of view."""

    OPEN = "open"  # with dispatch and the department
    CHECKING = "checking"  # reported handled: the inspector checks on site
    CLOSED = "closed"
    CANCELLED = "cancelled"


def check_can_check(status: ClosureStatus) -> None:
    """A check answers only a check task."""
    if status is not ClosureStatus.CHECKING:
        raise IllegalTransition("check", status.value)


def check_can_cancel(status: ClosureStatus) -> None:
    """Anything not yet closed or cancelled can be voided by a shift lead."""
    if status in (ClosureStatus.CLOSED, ClosureStatus.CANCELLED):
        raise IllegalTransition("cancel", status.value)


def closed_on_time(closed_at: datetime, handling_deadline: datetime | None) -> bool:
    """按期: closure no later than the deadline in force (a case never dispatched has none)."""
    return handling_deadline is None or closed_at <= handling_deadline


def check_answered_on_time(answered_at: datetime, check_deadline: datetime | None) -> bool:
    """按时核查: the inspector answered the check task no later than its deadline."""
    return check_deadline is None or answered_at <= check_deadline
