"""Intake keeps the case file: every event of every service lands in the case's timeline, and
the case's status follows the lifecycle so the command center and duplicate detection see it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select, update

from intake.domain import CaseStatus, status_follows_events
from intake.models import cases, timeline
from shared.context import ServiceContext
from shared.events.catalogue import CATALOGUE, CaseClosed, CaseDispatched, CaseResumed, ExtensionApproved, ReportMerged
from shared.events.envelope import Event
from shared.messaging.consumer import ConsumerSpec, Handler
from shared.messaging.store import Transaction

# Who acted, in the order a payload names them.
_ACTOR_FIELDS = (
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
)
_WHY_FIELDS = ("reason", "note", "result")

# The case status an event moves the case to (events not listed leave the status alone).
_STATUS_AFTER = {
    "case.queued_for_coordination": CaseStatus.COORDINATION,
    "case.dispatched": CaseStatus.DISPATCHED,
    "case.accepted": CaseStatus.ACCEPTED,
    "case.returned": CaseStatus.RETURNED,
    "case.suspended": CaseStatus.SUSPENDED,
    "case.handled": CaseStatus.HANDLED,
    "case.check_requested": CaseStatus.CHECKING,
    "case.check_failed": CaseStatus.REWORK,
    "case.closed": CaseStatus.CLOSED,
    "case.cancelled": CaseStatus.CANCELLED,
}


def consumers(ctx: ServiceContext) -> list[ConsumerSpec]:
    """One consumer group reading the whole case event log."""
    handler = _case_file_handler(ctx)
    return [
        ConsumerSpec(
            "intake.case-file",
            [ctx.settings.topic_case_events],
            dict.fromkeys(CATALOGUE.types, handler),
        )
    ]


def _case_file_handler(ctx: ServiceContext) -> Handler:
    async def apply(tx: Transaction, event: Event) -> None:
        data = event.data.model_dump(mode="json")
        entry = {
            "event_id": event.id,
            "at": event.time,
            "event_type": event.type,
            "service": event.source.rsplit("/", 1)[-1],
            "actor": next((str(data[f]) for f in _ACTOR_FIELDS if data.get(f)), "system"),
            "reason": next((str(data[f]) for f in _WHY_FIELDS if data.get(f)), None),
            "details": data,
        }
        case_id = UUID(event.subject)
        await tx.session.execute(timeline.insert().values(case_id=case_id, **entry))
        if isinstance(event.data, ReportMerged):
            # The case the duplicate joined shows it too.
            await tx.session.execute(timeline.insert().values(case_id=event.data.into_case_id, **entry))
        await _follow_status(ctx, tx, case_id, event)

    return apply


async def _follow_status(ctx: ServiceContext, tx: Transaction, case_id: UUID, event: Event) -> None:
    changes: dict[str, Any] = {}
    data = event.data
    status = _STATUS_AFTER.get(event.type)
    moves = status is not None or isinstance(data, CaseResumed)
    current: str | None = None
    if moves:
        current = (await tx.session.execute(select(cases.c.status).where(cases.c.id == case_id))).scalar_one_or_none()
        moves = current is None or status_follows_events(CaseStatus(current))
    if moves and status is CaseStatus.SUSPENDED:
        changes["status_before_suspension"] = current
    if moves and status is not None:
        changes["status"] = status
    if isinstance(data, CaseDispatched):
        changes.update(department_id=data.department_id, handling_deadline=data.handling_deadline)
    elif isinstance(data, ExtensionApproved | CaseResumed):
        changes["handling_deadline"] = data.handling_deadline
    elif isinstance(data, CaseClosed):
        changes.update(closed_at=event.time, on_time=data.on_time)
    if event.type == "case.returned":
        changes["department_id"] = None
    if moves and isinstance(data, CaseResumed):
        changes["status"] = cases.c.status_before_suspension
    if changes:
        changes["updated_at"] = ctx.clock.now()
        await tx.session.execute(update(cases).where(cases.c.id == case_id).values(changes))
