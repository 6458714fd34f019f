"""What intake tells other systems as a case moves: the hotline that handed it a work order hears
the receipt (受理回执), the status changes and the reply (办结回复); a department with a system of
its own hears every change to the cases it holds. Pure: the case file (``intake.case_file``) gives
each event with what it knows of the case, and sends what comes out on the integration topic, in
the transaction that applies the event; ``intake.delivery`` delivers it.

Each message is a CloudEvent of type ``citycase.integration.<kind>`` keyed by the case id, so a
case's messages keep their order to the end. Its id derives from the event and the endpoint (and,
for a work order merged into the case, that work order): an event applied again makes the same
message, which is published and delivered once.

A work order merged into another case (a duplicate of it) hears, after its "merged" receipt, what
changes the outcome its citizen waits for: the reply when the case it joined closes, and that case
reopened or cancelled; each merged work order its own message, under its own work order number.
Not the steps in between (dispatched, extended, suspended): the case is another report's, and its
hotline can follow it by the case number the receipt gave. Its ``body`` is
the JSON the endpoint receives, shaped as Standard Webhooks suggests (``type``, ``timestamp``,
``data``) whatever the endpoint's signing scheme. The citizen's contact is in none of them: intake
keeps it apart and nothing here reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.city.model import City
from shared.core.clock import rfc3339
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseReopened,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    Catalogue,
    CheckFailed,
    EventPayload,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    ReportMerged,
    ReportRejected,
    ReportSource,
    SupervisionIssued,
    VerificationRequested,
)
from shared.events.envelope import Event
from shared.integration.endpoints import Integrations
from shared.messaging.binding import encode
from shared.messaging.bus import Message

# Message ids are uuid5 of the event and the endpoint in this namespace (fixed: changing it would
# give an event applied again a new message).
MESSAGE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:citycase:integration:message")


class Kind(StrEnum):
    """What a message is: to a hotline its receipt, a status change or the reply; to a department
    a change to one of its cases."""

    RECEIPT = "receipt"
    STATUS = "status"
    REPLY = "reply"
    CASE = "case"


class OutboundMessage(EventPayload):
    """A message for another system, as it travels on the integration topic."""

    KIND: ClassVar[Kind]

    message_id: UUID
    endpoint: str
    case_id: UUID
    kind: Kind
    body: dict[str, Any]


class ReceiptMessage(OutboundMessage):
    """The hotline's receipt: the work order is accepted for verification, merged, or refused."""

    TYPE: ClassVar[str] = "citycase.integration.receipt"
    KIND: ClassVar[Kind] = Kind.RECEIPT


class StatusMessage(OutboundMessage):
    """A status change of a hotline's work order."""

    TYPE: ClassVar[str] = "citycase.integration.status"
    KIND: ClassVar[Kind] = Kind.STATUS


class ReplyMessage(OutboundMessage):
    """The hotline's reply at closure: what was done, by whom, when, with photos."""

    TYPE: ClassVar[str] = "citycase.integration.reply"
    KIND: ClassVar[Kind] = Kind.REPLY


class CaseMessage(OutboundMessage):
    """A change to a case a department holds (or held until this change)."""

    TYPE: ClassVar[str] = "citycase.integration.case"
    KIND: ClassVar[Kind] = Kind.CASE


MESSAGE_CLASSES: dict[Kind, type[OutboundMessage]] = {
    message.KIND: message for message in (ReceiptMessage, StatusMessage, ReplyMessage, CaseMessage)
}
# What the delivery worker decodes from the integration topic.
INTEGRATION_CATALOGUE = Catalogue(*MESSAGE_CLASSES.values())


@dataclass(frozen=True, slots=True)
class Handling:
    """The department's latest report back (处置反馈)."""

    result: str
    photos: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the case file knows of a report and, once filed, its case: who sent it, what and where
    it is, which department holds it, and what it last reported back."""

    id: UUID
    source: ReportSource
    reporter_id: str | None
    external_ref: str | None
    verifier_id: str | None
    category_code: str
    description: str
    lon: float
    lat: float
    cell_id: str
    community_id: str
    street_id: str
    district_id: str
    photos: tuple[str, ...]
    received_at: datetime
    case_number: str | None
    filed_at: datetime | None
    department_id: str | None
    handling: Handling | None
    # Set while the case is closed: when, and whether on time (for a reply to a work order merged
    # into it after its closure was decided).
    closed_at: datetime | None = None
    on_time: bool | None = None

    def after(self, data: EventPayload, at: datetime) -> CaseFacts:
        """The facts once ``data`` has happened (at ``at``): the department holding the case,
        its latest report back, and whether it is closed."""
        if isinstance(data, CaseDispatched):
            return replace(self, department_id=data.department_id)
        if isinstance(data, CaseReturned):
            return replace(self, department_id=None)
        if isinstance(data, CaseHandled):
            return replace(self, handling=Handling(data.result, tuple(data.photos), at))
        if isinstance(data, CaseClosed):
            return replace(self, closed_at=at, on_time=data.on_time)
        if isinstance(data, CaseReopened):
            return replace(self, closed_at=None, on_time=None)
        return self


# The events that mean something to a hotline or a department, or change what they will be told.
INTERESTING: tuple[type[EventPayload], ...] = (
    VerificationRequested,
    ReportMerged,
    ReportRejected,
    CaseFiled,
    CaseDispatched,
    CaseAccepted,
    CaseReturned,
    ExtensionRequested,
    ExtensionApproved,
    ExtensionDenied,
    CaseSuspended,
    CaseResumed,
    SupervisionIssued,
    CaseHandled,
    CheckFailed,
    CaseReopened,
    CaseClosed,
    CaseCancelled,
)


# What a work order merged into a case hears of that case (besides the reply at closure).
JOINED_HEAR: tuple[type[EventPayload], ...] = (CaseClosed, CaseReopened, CaseCancelled)


def message_id(event_id: UUID, endpoint: str, work_order: UUID | None = None) -> UUID:
    """The id of the message an event makes for an endpoint (about ``work_order``, a report
    merged into the event's case, when it is about one): the same however often it is made."""
    name = f"{event_id}/{endpoint}" if work_order is None else f"{event_id}/{endpoint}/{work_order}"
    return uuid5(MESSAGE_NAMESPACE, name)


def encoded(message: OutboundMessage, *, topic: str, source: str, at: datetime) -> Message:
    """The message as a CloudEvent on the integration ``topic``, keyed by its case."""
    event = Event(id=message.message_id, source=source, subject=str(message.case_id), time=at, data=message)
    return encode(event, topic)


class Outbound:
    """Turns the events of a case into the messages its hotline and departments receive."""

    def __init__(self, integrations: Integrations, city: City, public_url: str) -> None:
        self.integrations = integrations
        self.city = city
        self.public_url = public_url.rstrip("/")
        self._hotlines = {
            hotline.id: hotline.outbound.name for hotline in integrations.hotlines if hotline.outbound is not None
        }

    @property
    def sends_anything(self) -> bool:
        """Whether any hotline or department has an endpoint to send to."""
        return bool(self.integrations.endpoints)

    def messages(
        self,
        event: Event,
        facts: CaseFacts,
        merged_into: CaseFacts | None = None,
        joined: Iterable[CaseFacts] = (),
    ) -> list[OutboundMessage]:
        """The messages ``event`` makes, given what was known of its case just before it
        (``merged_into``: the case a merged report joined; ``joined``: the work orders merged
        into this case)."""
        return [
            *self._to_hotline(event, facts, merged_into),
            *self._to_joined(event, facts, joined),
            *self._to_departments(event, facts),
        ]

    # --- the hotline ---------------------------------------------------------------------------

    def hotline_endpoint(self, facts: CaseFacts) -> str | None:
        """The endpoint of the hotline whose work order this is, when it has one."""
        if facts.source is not ReportSource.HOTLINE or facts.reporter_id is None:
            return None
        return self._hotlines.get(facts.reporter_id)

    def _to_hotline(self, event: Event, facts: CaseFacts, merged_into: CaseFacts | None) -> list[OutboundMessage]:
        endpoint = self.hotline_endpoint(facts)
        if endpoint is None:
            return []
        said = self._hotline_says(event, facts, merged_into)
        if said is None:
            return []
        kind, data = said
        messages = [self._message(kind, event, endpoint, facts.id, _work_order(facts) | data)]
        if isinstance(event.data, ReportMerged) and merged_into is not None and merged_into.closed_at is not None:
            # Merged into a case whose closure was decided before the merge reached the case
            # file: the reply it would have had at the closure, right after the receipt.
            messages.append(
                self._joined_message(Kind.REPLY, self._reply_of(merged_into), event, endpoint, facts, merged_into)
            )
        return messages

    def _to_joined(self, event: Event, facts: CaseFacts, joined: Iterable[CaseFacts]) -> list[OutboundMessage]:
        """What the hotlines of the work orders merged into the case hear of ``event``."""
        if not isinstance(event.data, JOINED_HEAR):
            return []
        said = self._hotline_says(event, facts, None)
        if said is None:
            return []
        kind, data = said
        messages = []
        for work_order in joined:
            endpoint = self.hotline_endpoint(work_order)
            if endpoint is not None:
                messages.append(self._joined_message(kind, data, event, endpoint, work_order, facts))
        return messages

    def _joined_message(
        self, kind: Kind, data: dict[str, Any], event: Event, endpoint: str, work_order: CaseFacts, into: CaseFacts
    ) -> OutboundMessage:
        """A message to the hotline of ``work_order``, merged into the case ``into``, about that
        case: under the work order's own number and id (its line of messages), one per work order."""
        joined = {"merged_into": {"case_id": str(into.id), "case_number": into.case_number}}
        body = _work_order(work_order) | joined | data
        return self._message(kind, event, endpoint, work_order.id, body, work_order=work_order.id)

    def _hotline_says(
        self, event: Event, facts: CaseFacts, merged_into: CaseFacts | None
    ) -> tuple[Kind, dict[str, Any]] | None:
        """What the hotline hears of an event: a receipt, a status or the reply, or nothing."""
        data = event.data
        if isinstance(data, VerificationRequested):
            return Kind.RECEIPT, {"decision": "accepted", "verification_due_at": rfc3339(data.due_at)}
        if isinstance(data, ReportMerged):
            number = None if merged_into is None else merged_into.case_number
            into = {"case_id": str(data.into_case_id), "case_number": number}
            return Kind.RECEIPT, {"decision": "merged", "merged_into": into}
        if isinstance(data, ReportRejected):
            refusal = {"reason_code": data.reason_code, "reason": data.reason}
            # Refused before anyone went to look: that is the receipt; after, a status change.
            if facts.verifier_id is None:
                return Kind.RECEIPT, {"decision": "refused", **refusal}
            return Kind.STATUS, {"status": "rejected", **refusal}
        if isinstance(data, CaseClosed):
            return Kind.REPLY, self._reply_of(replace(facts, closed_at=event.time, on_time=data.on_time))
        status = self._hotline_status(data)
        return None if status is None else (Kind.STATUS, status)

    def _hotline_status(self, data: EventPayload) -> dict[str, Any] | None:
        if isinstance(data, CaseFiled):
            return {"status": "filed", "case_number": data.case_number}
        if isinstance(data, CaseDispatched):
            department = self._department(data.department_id)
            return {
                "status": "dispatched",
                "department": department,
                "handling_deadline": rfc3339(data.handling_deadline),
            }
        if isinstance(data, ExtensionApproved):
            return {"status": "extended", "handling_deadline": rfc3339(data.handling_deadline)}
        if isinstance(data, CaseResumed):
            return {"status": "resumed", "handling_deadline": rfc3339(data.handling_deadline)}
        if isinstance(data, CaseSuspended):
            return {"status": "suspended", "reason": data.reason}
        if isinstance(data, CaseCancelled):
            return {"status": "cancelled", "reason": data.reason}
        if isinstance(data, CaseReopened):
            return {"status": "reopened", "reason": data.reason}
        return None

    def _reply_of(self, closed: CaseFacts) -> dict[str, Any]:
        """The reply (办结回复) for a closed case: the department's latest report back, by which
        department, when."""
        handling = closed.handling
        return {
            "result": None if handling is None else handling.result,
            "department": None if closed.department_id is None else self._department(closed.department_id),
            "handled_at": None if handling is None else rfc3339(handling.at),
            "closed_at": None if closed.closed_at is None else rfc3339(closed.closed_at),
            "on_time": closed.on_time,
            "photos": self._photo_links(() if handling is None else handling.photos),
        }

    # --- the departments -----------------------------------------------------------------------

    def _to_departments(self, event: Event, facts: CaseFacts) -> list[OutboundMessage]:
        data = event.data
        messages = []
        holder = facts.department_id
        if isinstance(data, CaseDispatched) and holder is not None and holder != data.department_id:
            messages += self._to_department(event, facts, holder, {"change": "withdrawn", "department_id": holder})
        change = self._department_change(data, facts)
        if change is not None:
            department_id, details = change
            messages += self._to_department(event, facts, department_id, details)
        return messages

    def _to_department(
        self, event: Event, facts: CaseFacts, department_id: str, details: dict[str, Any]
    ) -> list[OutboundMessage]:
        endpoint = self.integrations.department(department_id)
        if endpoint is None:
            return []
        data = {"case_id": str(facts.id), "case_number": facts.case_number, **details}
        return [self._message(Kind.CASE, event, endpoint.name, facts.id, data)]

    def _department_change(self, data: EventPayload, facts: CaseFacts) -> tuple[str, dict[str, Any]] | None:
        """The department an event concerns (the one it names, else the one holding the case) and
        what it hears of it; None for events that are no department's business."""
        heard = self._department_hears(data, facts)
        department_id = getattr(data, "department_id", None) or facts.department_id
        if heard is None or department_id is None:
            return None
        change, details = heard
        return department_id, {"change": change, "department_id": department_id, **details}

    def _department_hears(self, data: EventPayload, facts: CaseFacts) -> tuple[str, dict[str, Any]] | None:
        match data:
            case CaseDispatched():
                return "dispatched", self._dispatched(data, facts)
            case CaseAccepted():
                return "accepted", {}
            case CaseReturned() | ExtensionDenied() | CaseSuspended() | CaseReopened() | CaseCancelled():
                return _CHANGE_NAMES[type(data)], {"reason": data.reason}
            case ExtensionRequested():
                return "extension_requested", {
                    "requested_deadline": rfc3339(data.requested_deadline),
                    "reason": data.reason,
                }
            case ExtensionApproved() | CaseResumed():
                return _CHANGE_NAMES[type(data)], {"handling_deadline": rfc3339(data.handling_deadline)}
            case SupervisionIssued():
                return "supervision_issued", {"level": data.level, "note": data.note}
            case CaseHandled():
                return "handled", {"result": data.result, "photos": self._photo_links(data.photos)}
            case CheckFailed():
                return "check_failed", {"reason": data.reason, "photos": self._photo_links(data.photos)}
            case CaseClosed():
                return "closed", {"on_time": data.on_time}
        return None

    def _dispatched(self, data: CaseDispatched, facts: CaseFacts) -> dict[str, Any]:
        """A case dispatched to the department: the whole case, as the department needs it."""
        try:
            category = self.city.category(facts.category_code).name
        except KeyError:  # a category the city has since removed: its code still says what
            category = facts.category_code
        return {
            "handling_deadline": rfc3339(data.handling_deadline),
            "attempt": data.attempt,
            "case": {
                "category": {"code": facts.category_code, "name": category},
                "description": facts.description,
                "source": facts.source.value,
                "location": {"lon": facts.lon, "lat": facts.lat},
                "place": {
                    "cell_id": facts.cell_id,
                    "community_id": facts.community_id,
                    "street_id": facts.street_id,
                    "district_id": facts.district_id,
                },
                "reported_at": rfc3339(facts.received_at),
                "filed_at": None if facts.filed_at is None else rfc3339(facts.filed_at),
                "photos": self._photo_links(facts.photos),
            },
        }

    # --- common --------------------------------------------------------------------------------

    def _message(
        self,
        kind: Kind,
        event: Event,
        endpoint: str,
        case_id: UUID,
        data: dict[str, Any],
        *,
        work_order: UUID | None = None,
    ) -> OutboundMessage:
        identifier = message_id(event.id, endpoint, work_order)
        body = {"id": str(identifier), "type": kind.value, "timestamp": rfc3339(event.time), "data": data}
        return MESSAGE_CLASSES[kind](message_id=identifier, endpoint=endpoint, case_id=case_id, kind=kind, body=body)

    def _department(self, department_id: str) -> dict[str, str]:
        try:
            name = self.city.department(department_id).name
        except KeyError:  # a department the city has since removed: its id still says who
            name = department_id
        return {"id": department_id, "name": name}

    def _photo_links(self, digests: tuple[str, ...] | list[str]) -> list[str]:
        """Absolute links to photos (served to any account of the city, by content hash)."""
        return [f"{self.public_url}/handling/photos/{digest}" for digest in digests]


# The names of the changes whose details are the same for several events.
_CHANGE_NAMES: dict[type[EventPayload], str] = {
    CaseReturned: "returned",
    ExtensionDenied: "extension_denied",
    CaseSuspended: "suspended",
    CaseReopened: "reopened",
    CaseCancelled: "cancelled",
    ExtensionApproved: "extension_approved",
    CaseResumed: "resumed",
}


def _work_order(facts: CaseFacts) -> dict[str, Any]:
    """How a hotline knows its work order: its number, and the case id and number it was given."""
    return {"work_order": facts.external_ref, "case_id": str(facts.id), "case_number": facts.case_number}
