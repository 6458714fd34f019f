"""Intake's rules: how a report becomes a case (立案), is rejected (不予立案) or merged, how a
hotline's signed requests are taken (a nonce used once, the citizen's verdict on a closed case),
and how the case file follows the case through every service.

A report keeps one id from the moment it arrives; when it is filed that id is the case id.
Inspectors are trusted on site: their valid reports are filed at once. Hotline and public
reports first go to the inspector of the cell for verification (核实). Video detections wait for
an operator, who files or rejects them. Any report still open may be rejected by an operator.

Each command has a decide function: the report as it stands and the command in, the guard run,
and out come the columns to write and the event to emit. The handlers only load, decide and save.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from uuid import UUID

from shared.city.calendar import Deadline
from shared.city.geo import distance_m
from shared.city.model import Category
from shared.core.errors import IdempotencyConflict, IllegalTransition, InvalidInput, OutOfScope
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseReopened,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    CheckRequested,
    DeadlineKind,
    DeadlineRecomputed,
    EventPayload,
    ExtensionApproved,
    GridPlace,
    ReportMerged,
    ReportRejected,
    ReportSource,
    ReportVerified,
    VerificationRequested,
)
from shared.integration.signing import ReplayedNonce, Scheme


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


class RejectionReason(StrEnum):
    """Why a report is not filed."""

    OUT_OF_SCOPE = "out_of_scope"  # not city management's business
    INVALID = "invalid"  # false, unclear or unlocatable
    NOT_CONFIRMED = "not_confirmed"  # the inspector found nothing on site


# --- reports --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """What intake's rules read of a report."""

    id: UUID
    status: ReportStatus
    source: ReportSource
    category_code: str
    cell_id: str
    lon: float
    lat: float
    received_at: datetime
    self_handled: bool
    external_ref: str | None
    verifier_id: str | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Report:
        """The report in a row of the ``reports`` table."""
        return cls(
            id=row["id"],
            status=ReportStatus(row["status"]),
            source=ReportSource(row["source"]),
            category_code=row["category_code"],
            cell_id=row["cell_id"],
            lon=row["lon"],
            lat=row["lat"],
            received_at=row["received_at"],
            self_handled=row["self_handled"],
            external_ref=row["external_ref"],
            verifier_id=row.get("verifier_id"),  # a report just arrived has none yet
        )


def initial_status(source: ReportSource) -> ReportStatus:
    """Where a new, non-duplicate report starts."""
    if source is ReportSource.INSPECTOR:
        return ReportStatus.FILED
    if source is ReportSource.VIDEO:
        return ReportStatus.AWAITING_REVIEW
    return ReportStatus.VERIFYING


def ensure_may_self_handle(source: ReportSource, self_handled: bool) -> None:
    """Only an inspector on site handles a problem themselves (自行处置)."""
    if self_handled and source is not ReportSource.INSPECTOR:
        raise InvalidInput("only an inspector on site can handle a problem themselves")


def ensure_can_file(status: ReportStatus) -> None:
    """An operator may file a report still waiting for review or verification."""
    if status not in (ReportStatus.AWAITING_REVIEW, ReportStatus.VERIFYING):
        raise IllegalTransition("file", status.value)


def ensure_can_reject(status: ReportStatus) -> None:
    """Only a report not yet filed, rejected or merged can be rejected."""
    if status not in (ReportStatus.AWAITING_REVIEW, ReportStatus.VERIFYING):
        raise IllegalTransition("reject", status.value)


def ensure_can_verify(status: ReportStatus) -> None:
    """Verification answers only a report that is waiting for it."""
    if status is not ReportStatus.VERIFYING:
        raise IllegalTransition("verify", status.value)


def ensure_is_verifier(report: Report, inspector_id: str) -> None:
    """A verification task is answered by the inspector it went to, no other."""
    if report.verifier_id != inspector_id:
        raise OutOfScope("this verification task belongs to another inspector")


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


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where a new report starts: its status, the columns that go with it, and the merge event
    when it joined an open case."""

    status: ReportStatus
    changes: dict[str, Any]
    merged: ReportMerged | None = None


def decide_arrival(
    source: ReportSource, *, self_handled: bool, duplicate: tuple[OpenCase, float] | None, at: datetime
) -> Arrival:
    """A report that duplicates an open case (the nearest, with its distance) is merged into it,
    unless its inspector handled it on the spot; any other starts as ``initial_status`` says.
    """
    if duplicate is not None and not self_handled:
        case, distance = duplicate
        into = UUID(case.case_id)
        return Arrival(
            ReportStatus.MERGED,
            {"status": ReportStatus.MERGED, "merged_into": into, "decided_at": at},
            ReportMerged(into_case_id=into, distance_m=round(distance, 1)),
        )
    status = initial_status(source)
    return Arrival(status, {"status": status})


def decide_verification_request(inspector_id: str, due: Deadline) -> tuple[dict[str, Any], VerificationRequested]:
    """A report that goes to the cell's inspector: who verifies it, by when, and the event."""
    changes = {
        "verifier_id": inspector_id,
        "verification_due_at": due.at,
        "verification_due_provisional": due.provisional,
    }
    return changes, VerificationRequested(inspector_id=inspector_id, due_at=due.at, provisional=due.provisional)


def decide_verification_recompute(
    report: Mapping[Any, Any], due: Deadline
) -> tuple[dict[str, Any], DeadlineRecomputed] | None:
    """A verification still waiting, whose due time was counted on a provisional calendar year,
    counted again as ``due``: the changes and the event, or None when nothing changed."""
    if report["status"] != ReportStatus.VERIFYING or (due.at, due.provisional) == (
        report["verification_due_at"],
        report["verification_due_provisional"],
    ):
        return None
    recomputed = DeadlineRecomputed(
        kind=DeadlineKind.VERIFICATION,
        deadline=due.at,
        provisional=due.provisional,
        previous=report["verification_due_at"],
    )
    return {"verification_due_at": due.at, "verification_due_provisional": due.provisional}, recomputed


@dataclass(frozen=True, slots=True)
class FilingTerms:
    """What filing takes from outside the report: the case number kept aside for it, the
    category, the place of its cell and that cell's inspector, the deadlines the calendar gives,
    who files it and when."""

    case_number: str
    category: Category
    place: GridPlace
    inspector_id: str
    filing_deadline: Deadline
    dispatch_deadline: Deadline
    filed_by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Filing:
    """What filing a report as a case (立案) writes: the report's new columns, the case file's
    row, and the event."""

    case_id: UUID
    at: datetime
    report_changes: dict[str, Any]
    case_row: dict[str, Any]
    event: CaseFiled


def decide_filing(report: Report, terms: FilingTerms) -> Filing:
    """File ``report`` as a case: the report takes the case number; the case file starts filed.

    No guard: each command that files (arrival, verification, operator) runs its own first.
    """
    report_changes = {
        "status": ReportStatus.FILED,
        "case_number": terms.case_number,
        "decided_by": terms.filed_by,
        "decided_at": terms.at,
        "filing_deadline": terms.filing_deadline.at,
        "filing_deadline_provisional": terms.filing_deadline.provisional,
    }
    category = terms.category
    event = CaseFiled(
        case_number=terms.case_number,
        category_code=category.code,
        family=category.family,
        source=report.source,
        place=terms.place,
        filed_by=terms.filed_by,
        reported_at=report.received_at,
        filing_deadline=terms.filing_deadline.at,
        dispatch_deadline=terms.dispatch_deadline.at,
        filing_deadline_provisional=terms.filing_deadline.provisional,
        dispatch_deadline_provisional=terms.dispatch_deadline.provisional,
        inspector_id=terms.inspector_id,
        self_handled=report.self_handled,
        urgent=category.urgent,
    )
    return Filing(report.id, terms.at, report_changes, _case_row(report, terms), event)


def _case_row(report: Report, terms: FilingTerms) -> dict[str, Any]:
    """The case file's row of a case just filed."""
    place = terms.place
    return {
        "id": report.id,
        "case_number": terms.case_number,
        "category_code": terms.category.code,
        "source": report.source.value,
        "lon": report.lon,
        "lat": report.lat,
        "cell_id": place.cell_id,
        "street_id": place.street_id,
        "district_id": place.district_id,
        "status": CaseStatus.FILED,
        "reported_at": report.received_at,
        "filed_at": terms.at,
        "external_ref": report.external_ref,
        "updated_at": terms.at,
    }


def decide_file(report: Report, terms: FilingTerms) -> Filing:
    """An operator files a report waiting for review or verification (立案)."""
    ensure_can_file(report.status)
    return decide_filing(report, terms)


@dataclass(frozen=True, slots=True)
class Rejection:
    """What declining to file a report (不予立案) writes, and the event."""

    changes: dict[str, Any]
    event: ReportRejected


def _rejection(reason_code: RejectionReason, reason: str, rejected_by: str, at: datetime) -> Rejection:
    changes = {
        "status": ReportStatus.REJECTED,
        "rejection_code": reason_code.value,
        "rejection_reason": reason,
        "decided_by": rejected_by,
        "decided_at": at,
    }
    return Rejection(changes, ReportRejected(reason_code=reason_code.value, reason=reason, rejected_by=rejected_by))


def decide_rejection(
    report: Report, reason_code: RejectionReason, reason: str, *, rejected_by: str, at: datetime
) -> Rejection:
    """An operator declines to file a report that is still open (不予立案)."""
    ensure_can_reject(report.status)
    return _rejection(reason_code, reason, rejected_by, at)


@dataclass(frozen=True, slots=True)
class Verification:
    """The inspector's answer: its event, and the rejection when nothing was found (None: the
    report is to be filed)."""

    event: ReportVerified
    rejection: Rejection | None


def decide_verification(
    report: Report,
    inspector_id: str,
    *,
    confirmed: bool,
    note: str | None,
    photos: list[str],
    decided_by: str,
    at: datetime,
) -> Verification:
    """The verifying inspector's on-site answer (核实): a confirmed report is filed, another is
    rejected as not confirmed, with the inspector's note as the reason."""
    ensure_is_verifier(report, inspector_id)
    ensure_can_verify(report.status)
    event = ReportVerified(inspector_id=inspector_id, confirmed=confirmed, note=note, photos=photos)
    if confirmed:
        return Verification(event, None)
    rejection = _rejection(RejectionReason.NOT_CONFIRMED, note or "not found on site", decided_by, at)
    return Verification(event, rejection)


# --- a hotline's signed requests --------------------------------------------------------------


def is_retry(scheme: Scheme, seen_body_sha256: str | None, body_sha256: str) -> bool:
    """Whether a signed request whose nonce was seen before (with a body of ``seen_body_sha256``;
    None: never seen) is a retry of that request, to be answered as it was, creating nothing.

    Standard Webhooks makes the ``webhook-id`` a message's idempotency key: the same id with the
    same body is the sender retrying; with another body it is a replay. An app-key nonce is used
    once, whatever the body (the sender makes a new one for every attempt). ``ReplayedNonce`` (409)
    for a replay.
    """
    if seen_body_sha256 is None:
        return False
    if scheme is Scheme.STANDARD_WEBHOOKS and seen_body_sha256 == body_sha256:
        return True
    raise ReplayedNonce(
        "this webhook-id came before with another body"
        if scheme is Scheme.STANDARD_WEBHOOKS
        else "this X-Nonce was used before: every request has a nonce of its own"
    )


@dataclass(frozen=True, slots=True)
class WorkOrderCase:
    """A hotline's work order as a callback finds it: its report's status and, when it was filed,
    its case's."""

    report_id: UUID
    report_status: ReportStatus
    case_status: CaseStatus | None
    merged_into: UUID | None


@dataclass(frozen=True, slots=True)
class Callback:
    """The citizen's verdict as the hotline's callback (回访) gave it: the row to keep, the event."""

    row: dict[str, Any]
    event: CallbackRecorded


def decide_callback(
    work_order_case: WorkOrderCase,
    *,
    hotline_id: str,
    work_order: str,
    verdict: CallbackVerdict,
    note: str | None,
    nonce: str,
    at: datetime,
    callback_id: str | None = None,
) -> Callback:
    """Record the citizen's verdict on the case a hotline's work order became, once it is closed.

    The citizen is called back about what was done: a work order that was never filed (rejected,
    merged into another case, still being verified) or a case still open has no verdict to give
    (``IllegalTransition``, a 409).
    """
    if work_order_case.report_status is ReportStatus.MERGED:
        raise IllegalTransition(
            "record a callback for",
            ReportStatus.MERGED.value,
            f"work order {work_order} was merged into case {work_order_case.merged_into}: that case is called"
            " back about, not this work order",
        )
    if work_order_case.case_status is None:
        raise IllegalTransition(
            "record a callback for", work_order_case.report_status.value, f"work order {work_order} was never filed"
        )
    if work_order_case.case_status is not CaseStatus.CLOSED:
        raise IllegalTransition("record a callback for", work_order_case.case_status.value)
    row = {
        "case_id": work_order_case.report_id,
        "hotline_id": hotline_id,
        "work_order": work_order,
        "nonce": nonce,
        "callback_id": callback_id,
        "verdict": verdict.value,
        "note": note,
        "received_at": at,
    }
    return Callback(row, CallbackRecorded(hotline_id=hotline_id, work_order=work_order, verdict=verdict, note=note))


def ensure_callback_resend_of(
    existing: Mapping[Any, Any], work_order: str, verdict: CallbackVerdict, note: str | None
) -> None:
    """A callback that comes again under a nonce or a ``callback_id`` already recorded must be the
    same callback."""
    if (existing["work_order"], existing["verdict"], existing["note"]) != (work_order, verdict.value, note):
        raise ReplayedNonce("this nonce or callback_id was used before for another callback")


def case_number(period: str, sequence: int) -> str:
    """The human-friendly number of a case: the month it was filed and its rank in that month."""
    return f"{period}-{sequence:06d}"


# --- the case file: following the case through every service --------------------------------

# The case status an event moves the case to (events not listed leave the status alone).
CASE_STATUS_AFTER: Mapping[type[EventPayload], CaseStatus] = MappingProxyType(
    {
        CaseQueuedForCoordination: CaseStatus.COORDINATION,
        CaseDispatched: CaseStatus.DISPATCHED,
        CaseAccepted: CaseStatus.ACCEPTED,
        CaseReturned: CaseStatus.RETURNED,
        CaseSuspended: CaseStatus.SUSPENDED,
        CaseHandled: CaseStatus.HANDLED,
        CheckRequested: CaseStatus.CHECKING,
        CheckFailed: CaseStatus.REWORK,
        # A reopen (返工 after an unsatisfied callback) sends the case back as a failed check does.
        CaseReopened: CaseStatus.REWORK,
        CaseClosed: CaseStatus.CLOSED,
        CaseCancelled: CaseStatus.CANCELLED,
    }
)


def may_follow_events(current: CaseStatus) -> bool:
    """Whether lifecycle events still move the case's status: a closed or cancelled case stays
    so, even when a service that had not heard of the ending yet acts on it (a department signs
    for a case the shift lead has just voided). A reopen is the one event that moves a closed
    case (``follow``).
    """
    return current not in ENDED_CASE_STATUSES


def is_case_row_event(data: EventPayload) -> bool:
    """Whether an event changes the case file's row (its status, department, deadline or closure)."""
    return (
        type(data) in CASE_STATUS_AFTER
        or isinstance(data, CaseResumed | ExtensionApproved)
        or (isinstance(data, DeadlineRecomputed) and data.kind is DeadlineKind.HANDLING)
    )


@dataclass(frozen=True, slots=True)
class CaseState:
    """What the case file's rules read of a case: its status, and the status a suspension
    interrupted (where resuming goes back to)."""

    status: CaseStatus
    status_before_suspension: CaseStatus | None


def follow(case: CaseState, data: EventPayload, at: datetime) -> tuple[CaseState, dict[str, Any]]:
    """The case after an event that happened ``at``, and the changes to its row."""
    status = CASE_STATUS_AFTER.get(type(data))
    resumed = isinstance(data, CaseResumed)
    reopened = isinstance(data, CaseReopened) and case.status is CaseStatus.CLOSED
    moves = (status is not None or resumed) and (may_follow_events(case.status) or reopened)
    changes: dict[str, Any] = {}
    if moves and status is CaseStatus.SUSPENDED:
        changes["status_before_suspension"] = case.status
    if moves and status is not None:
        changes["status"] = status
    if moves and resumed:
        changes["status"] = case.status_before_suspension
    if isinstance(data, CaseDispatched):
        changes.update(department_id=data.department_id)
    if isinstance(data, CaseDispatched | ExtensionApproved | CaseResumed):
        changes.update(handling_deadline=data.handling_deadline, handling_deadline_provisional=data.provisional)
    elif isinstance(data, DeadlineRecomputed) and data.kind is DeadlineKind.HANDLING:
        changes.update(handling_deadline=data.deadline, handling_deadline_provisional=data.provisional)
    elif isinstance(data, CaseClosed):
        changes.update(closed_at=at, on_time=data.on_time)
    if isinstance(data, CaseReturned):
        changes["department_id"] = None
    if reopened:
        # No longer closed: closed again (and judged on time or not) when it is handled again.
        changes.update(closed_at=None, on_time=None)
    after = replace(
        case,
        status=changes.get("status") or case.status,
        status_before_suspension=changes.get("status_before_suspension", case.status_before_suspension),
    )
    return after, changes


# Who acted, in the order a payload names them; and why.
ACTOR_FIELDS = (
    "filed_by",
    "dispatched_by",
    "accepted_by",
    "returned_by",
    "requested_by",
    "approved_by",
    "denied_by",
    "suspended_by",
    "resumed_by",
    "handled_by",
    "closed_by",
    "cancelled_by",
    "rejected_by",
    "inspector_id",
    "reporter_id",
    "hotline_id",
)
REASON_FIELDS = ("reason", "note", "result")


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """An event as the timeline shows it: the cases whose timeline it joins, who acted (or
    ``system``), why, and the payload itself."""

    case_ids: tuple[UUID, ...]
    actor: str
    reason: str | None
    details: dict[str, Any]


def timeline_step(case_id: UUID, data: EventPayload) -> TimelineStep:
    """The step an event about ``case_id`` adds to the timeline: its case's, and that of the
    case a duplicate joined."""
    details = data.model_dump(mode="json")
    case_ids = (case_id, data.into_case_id) if isinstance(data, ReportMerged) else (case_id,)
    actor = next((str(details[f]) for f in ACTOR_FIELDS if details.get(f)), "system")
    reason = next((str(details[f]) for f in REASON_FIELDS if details.get(f)), None)
    return TimelineStep(case_ids, actor, reason, details)


# What a resend must repeat to be answered with the report its key first made.
RESEND_FIELDS = ("source", "category_code", "description", "lon", "lat", "photos", "external_ref", "self_handled")


def ensure_resend_of(existing: Mapping[Any, Any], sent: Mapping[str, Any]) -> None:
    """A reused idempotency key must come with the same report, field for field: a different one
    is a 409 (``IdempotencyConflict``), never the first report's body — which, for an anonymous
    citizen, would be somebody else's."""
    differing = [name for name in RESEND_FIELDS if _comparable(existing[name]) != _comparable(sent[name])]
    if differing:
        raise IdempotencyConflict(
            "this client_ref (or work order number) was already used for a different report",
            {"differing_fields": differing},
        )


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value
