"""Intake's rules: how a report becomes a case (立案), is rejected (不予立案) or merged.

A report keeps one id from the moment it arrives; when it is filed that id is the case id.
Inspectors are trusted on site: their valid reports are filed at once. Hotline and public
reports first go to the inspector of the cell for verification (核实). Video detections wait for
an operator, who files or rejects them. Any report still open may be rejected by an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.city.geo import distance_m
from shared.core.errors import IllegalTransition
from shared.events.catalogue import ReportSource


class ReportStatus(StrEnum):
    """Where a report stands in intake."""

    AWAITING_REVIEW = "awaiting_review"  # an operator decides (video detections)
    VERIFYING = "verifying"  # the cell's inspector checks on site (hotline, public)
    FILED = "filed"
    REJECTED = "rejected"
    MERGED = "merged"


class CaseStatus(StrEnum):
    """The case as the command center sees it, followed from every service's events."""

    FILED = "filed"
    COORDINATION = "coordination"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    SUSPENDED = "suspended"
    HANDLED = "handled"
    CHECKING = "checking"
    REWORK = "rework"
    CLOSED = "closed"
    CANCELLED = "cancelled"


ENDED_CASE_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.CANCELLED})
OPEN_CASE_STATUSES = frozenset(CaseStatus) - ENDED_CASE_STATUSES


def status_follows_events(current: CaseStatus) -> bool:
    """Whether lifecycle events still move the case's status: a closed or cancelled case stays
    so, even when a service that had not heard of the ending yet acts on it (a department signs
    for a case the shift lead has just voided).
    """
    return current not in ENDED_CASE_STATUSES


class RejectionReason(StrEnum):
    """Why a report is not filed."""

    OUT_OF_SCOPE = "out_of_scope"  # not city management's business
    INVALID = "invalid"  # false, unclear or unlocatable
    NOT_CONFIRMED = "not_confirmed"  # the inspector found nothing on site


def initial_status(source: ReportSource) -> ReportStatus:
    """Where a new, non-duplicate report starts."""
    if source is ReportSource.INSPECTOR:
        return ReportStatus.FILED
    if source is ReportSource.VIDEO:
        return ReportStatus.AWAITING_REVIEW
    return ReportStatus.VERIFYING


def check_can_file(status: ReportStatus) -> None:
    """An operator may file a report still waiting for review or verification."""
    if status not in (ReportStatus.AWAITING_REVIEW, ReportStatus.VERIFYING):
        raise IllegalTransition("file", status.value)


def check_can_reject(status: ReportStatus) -> None:
    """Only a report not yet filed, rejected or merged can be rejected."""
    if status not in (ReportStatus.AWAITING_REVIEW, ReportStatus.VERIFYING):
        raise IllegalTransition("reject", status.value)


def check_can_verify(status: ReportStatus) -> None:
    """Verification answers only a report that is waiting for it."""
    if status is not ReportStatus.VERIFYING:
        raise IllegalTransition("verify", status.value)


@dataclass(frozen=True, slots=True)
class OpenCase:
    """What duplicate detection needs to know of an open case."""

    case_id: str
    category_code: str
    lon: float
    lat: float
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class DuplicateRule:
    """Same category, still open, within ``radius_m`` and ``window`` of the new report."""

    radius_m: float
    window: timedelta

    def find(
        self, category_code: str, lon: float, lat: float, at: datetime, candidates: list[OpenCase]
    ) -> tuple[OpenCase, float] | None:
        """The nearest open case the report duplicates, with its distance, or None."""
        best: tuple[OpenCase, float] | None = None
        for case in candidates:
            if case.category_code != category_code or at - case.reported_at > self.window:
                continue
            distance = distance_m(lon, lat, case.lon, case.lat)
            if distance <= self.radius_m and (best is None or distance < best[1]):
                best = (case, distance)
        return best


def case_number(period: str, sequence: int) -> str:
    """The human-friendly number of a case: the month it was filed and its rank in that month."""
    return f"{period}-{sequence:06d}"
