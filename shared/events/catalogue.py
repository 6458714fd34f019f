"""The event catalogue: every fact the services tell each other, with a schema version per type.

Events are facts in the past tense. The subject of every case event is the case id, which the
report already carries: a case keeps one id from report to closure. The occurrence time is the
envelope's ``time``; payloads carry only what the envelope does not.

Readers are tolerant (unknown fields are ignored) so a producer may add an optional field without
breaking older consumers; a breaking change is a new ``VERSION`` of the type, registered beside
the old one until every consumer reads it.

A deadline counted on a provisional calendar year (``shared.city.calendar``) travels with a
``provisional`` flag beside it. The flags came later as optional fields defaulting to False: an
event written before them reads as the official deadline it was, and an older reader ignores
them, so the types kept their version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(BaseModel):
    """Base of every payload; subclasses set the CloudEvents ``type`` and the schema version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


class ReportSource(StrEnum):
    """Where a report came from; assessment reports every indicator per source."""

    INSPECTOR = "inspector"
    HOTLINE = "hotline"
    PUBLIC = "public"
    VIDEO = "video"


class CategoryFamily(StrEnum):
    """CJ/T 214 splits the catalogue into components (部件) and events (事件)."""

    COMPONENT = "component"
    EVENT = "event"


class DeadlineKind(StrEnum):
    """The time limits a case runs against."""

    VERIFICATION = "verification"
    FILING = "filing"
    DISPATCH = "dispatch"
    HANDLING = "handling"
    CHECK = "check"


class GeoPoint(BaseModel):
    """A point in WGS-84; other datums are converted at the edge before anything is stored."""

    model_config = ConfigDict(frozen=True)

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class GridPlace(BaseModel):
    """Where a case sits in the grid hierarchy, so assessment can roll up without lookups."""

    model_config = ConfigDict(frozen=True)

    cell_id: str
    community_id: str
    street_id: str
    district_id: str


# --- intake: collection, verification, filing or rejection ---------------------------------


class ReportReceived(EventPayload):
    """A report (上报) arrived from an inspector, the hotline, the public or video detection."""

    TYPE: ClassVar[str] = "report.received"

    source: ReportSource
    category_code: str
    description: str
    point: GeoPoint
    place: GridPlace
    reporter_id: str | None = None
    external_ref: str | None = None
    photos: list[str] = Field(default_factory=list)
    self_handled: bool = False


class VerificationRequested(EventPayload):
    """A public or hotline report went to the cell's inspector for on-site verification (核实)."""

    TYPE: ClassVar[str] = "report.verification_requested"

    inspector_id: str
    due_at: datetime
    provisional: bool = False


class ReportVerified(EventPayload):
    """The inspector answered the verification task: the problem is there or it is not."""

    TYPE: ClassVar[str] = "report.verified"

    inspector_id: str
    confirmed: bool
    note: str | None = None
    photos: list[str] = Field(default_factory=list)


class ReportRejected(EventPayload):
    """The report will not become a case (不予立案)."""

    TYPE: ClassVar[str] = "report.rejected"

    reason_code: str
    reason: str
    rejected_by: str


class ReportMerged(EventPayload):
    """The report duplicates an open case and was merged into it."""

    TYPE: ClassVar[str] = "report.merged"

    into_case_id: UUID
    distance_m: float | None = None


class CaseFiled(EventPayload):
    """The report became a case (立案) and got its case number."""

    TYPE: ClassVar[str] = "case.filed"

    case_number: str
    category_code: str
    family: CategoryFamily
    source: ReportSource
    place: GridPlace
    filed_by: str
    reported_at: datetime
    filing_deadline: datetime | None = None
    dispatch_deadline: datetime | None = None
    filing_deadline_provisional: bool = False
    dispatch_deadline_provisional: bool = False
    inspector_id: str | None = None
    self_handled: bool = False
    urgent: bool = False


# --- dispatch: routing, deadlines, extensions, suspensions, timers --------------------------


class CaseQueuedForCoordination(EventPayload):
    """No routing rule names an owner (权属不清): the case waits in the coordination queue."""

    TYPE: ClassVar[str] = "case.queued_for_coordination"

    reason: str


class CaseDispatched(EventPayload):
    """The case was sent to a department (派遣) with its handling deadline."""

    TYPE: ClassVar[str] = "case.dispatched"

    department_id: str
    dispatched_by: str
    handling_deadline: datetime
    attempt: int = Field(ge=1)
    rule_id: str | None = None
    provisional: bool = False


class ExtensionApproved(EventPayload):
    """The shift lead granted more time (延期): the handling deadline moves."""

    TYPE: ClassVar[str] = "case.extension_approved"

    approved_by: str
    handling_deadline: datetime
    provisional: bool = False


class ExtensionDenied(EventPayload):
    """The shift lead refused the extension: the deadline stands."""

    TYPE: ClassVar[str] = "case.extension_denied"

    denied_by: str
    reason: str


class CaseSuspended(EventPayload):
    """The case was suspended (挂账/缓办): its clock stops."""

    TYPE: ClassVar[str] = "case.suspended"

    suspended_by: str
    reason: str


class CaseResumed(EventPayload):
    """The case resumed; the deadline moved by the time the clock stood still."""

    TYPE: ClassVar[str] = "case.resumed"

    resumed_by: str
    handling_deadline: datetime
    provisional: bool = False


class DeadlineMissed(EventPayload):
    """A persisted timer fired: a deadline passed with the step not done."""

    TYPE: ClassVar[str] = "case.deadline_missed"

    kind: DeadlineKind
    deadline: datetime
    department_id: str | None = None


class DeadlineRecomputed(EventPayload):
    """A deadline counted on a provisional calendar year was counted again once the city had
    that year's official days (or it stays provisional, moved by a correction); the step it
    times is still to be done. Each service recomputes the deadlines it set."""

    TYPE: ClassVar[str] = "case.deadline_recomputed"

    kind: DeadlineKind
    deadline: datetime
    provisional: bool
    previous: datetime


class SupervisionIssued(EventPayload):
    """A supervision notice (督办) went to the department of an overdue case."""

    TYPE: ClassVar[str] = "case.supervision_issued"

    department_id: str
    level: int = Field(ge=1)
    note: str


# --- handling: the department's side --------------------------------------------------------


class CaseAccepted(EventPayload):
    """The department signed for the case (签收)."""

    TYPE: ClassVar[str] = "case.accepted"

    department_id: str
    accepted_by: str


class CaseReturned(EventPayload):
    """The department sent the case back as not its own (回退)."""

    TYPE: ClassVar[str] = "case.returned"

    department_id: str
    returned_by: str
    reason: str


class ExtensionRequested(EventPayload):
    """The department asked for more time (申请延期)."""

    TYPE: ClassVar[str] = "case.extension_requested"

    department_id: str
    requested_by: str
    requested_deadline: datetime
    reason: str


class CaseHandled(EventPayload):
    """The department reported the problem handled (处置反馈), with photos."""

    TYPE: ClassVar[str] = "case.handled"

    department_id: str
    handled_by: str
    result: str
    photos: list[str] = Field(default_factory=list)


# --- closure: check on site, rework, close, cancel ------------------------------------------


class CheckRequested(EventPayload):
    """A check task (核查) went to the cell's inspector."""

    TYPE: ClassVar[str] = "case.check_requested"

    inspector_id: str
    check_deadline: datetime
    provisional: bool = False


class CheckPassed(EventPayload):
    """The inspector found the problem solved."""

    TYPE: ClassVar[str] = "case.check_passed"

    inspector_id: str
    note: str | None = None
    photos: list[str] = Field(default_factory=list)


class CheckFailed(EventPayload):
    """The inspector found the problem still there: the case goes back for rework (返工)."""

    TYPE: ClassVar[str] = "case.check_failed"

    inspector_id: str
    reason: str
    photos: list[str] = Field(default_factory=list)


class CaseClosed(EventPayload):
    """The case was closed (结案); on time when no later than its deadline with extensions."""

    TYPE: ClassVar[str] = "case.closed"

    closed_by: str
    on_time: bool
    handling_deadline: datetime | None = None
    self_handled: bool = False


class CallbackVerdict(StrEnum):
    """What the citizen said when the hotline called back (回访)."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"


class CallbackRecorded(EventPayload):
    """The hotline pushed the result of its callback to the citizen (回访) for a case it handed over.

    The verdict counts in the satisfaction rate (满意率); the citizen's contact never travels.
    """

    TYPE: ClassVar[str] = "case.callback_recorded"

    hotline_id: str
    work_order: str
    verdict: CallbackVerdict
    note: str | None = None


class CaseReopened(EventPayload):
    """A closed case went back to its department for rework (返工) because the citizen was not
    satisfied and the city's rules say such a case is handled again."""

    TYPE: ClassVar[str] = "case.reopened"

    department_id: str | None
    reason: str


class CaseCancelled(EventPayload):
    """A shift lead voided the case (作废)."""

    TYPE: ClassVar[str] = "case.cancelled"

    cancelled_by: str
    reason: str


class UnknownEventType(LookupError):
    """The (type, version) pair is not in the catalogue."""


class Catalogue:
    """The registry of payload models by CloudEvents type and schema version."""

    def __init__(self, *payloads: type[EventPayload]) -> None:
        self._models: dict[tuple[str, int], type[EventPayload]] = {}
        for model in payloads:
            key = (model.TYPE, model.VERSION)
            if key in self._models:
                raise ValueError(f"{model.TYPE} v{model.VERSION} is registered twice")
            self._models[key] = model

    def model_for(self, event_type: str, version: int) -> type[EventPayload]:
        """The payload model of one type and version, or ``UnknownEventType``."""
        try:
            return self._models[(event_type, version)]
        except KeyError:
            raise UnknownEventType(f"unknown event type {event_type!r} version {version}") from None

    @property
    def types(self) -> frozenset[str]:
        """Every registered type name."""
        return frozenset(event_type for event_type, _ in self._models)

    @property
    def payloads(self) -> tuple[type[EventPayload], ...]:
        """Every registered payload model, in registration order."""
        return tuple(self._models.values())

    def registers(self, model: type[EventPayload]) -> bool:
        """Whether ``model`` is the catalogue's model of its type and version."""
        return self._models.get((model.TYPE, model.VERSION)) is model


CATALOGUE = Catalogue(
    ReportReceived,
    VerificationRequested,
    ReportVerified,
    ReportRejected,
    ReportMerged,
    CaseFiled,
    CaseQueuedForCoordination,
    CaseDispatched,
    ExtensionApproved,
    ExtensionDenied,
    CaseSuspended,
    CaseResumed,
    DeadlineMissed,
    DeadlineRecomputed,
    SupervisionIssued,
    CaseAccepted,
    CaseReturned,
    ExtensionRequested,
    CaseHandled,
    CheckRequested,
    CheckPassed,
    CheckFailed,
    CaseClosed,
    CallbackRecorded,
    CaseReopened,
    CaseCancelled,
)
