"""Intake keeps the case file: every event of every service lands in the case's timeline, and
the case's status follows the lifecycle so the command center and duplicate detection see it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select, update

from intake.domain import CaseStatus, status_follows_events
from intake.models import cases, timeline
from shared.events.catalogue import CATALOGUE, CaseClosed, CaseDispatched, CaseResumed, ExtensionApproved, ReportMerged
from shared.events.envelope import Event
from shared.messaging.consumer import BatchHandler, ConsumerSpec
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

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
    apply_batch = _case_file(ctx)

    async def apply_one(tx: Transaction, event: Event) -> None:
        await apply_batch(tx, [event])

    return [
        ConsumerSpec(
            "intake.case-file",
            [ctx.settings.topic_case_events],
            dict.fromkeys(CATALOGUE.types, apply_one),
            apply_batch=apply_batch,
        )
    ]


def _timeline_entries(event: Event) -> list[dict[str, Any]]:
    """The timeline rows of an event: its case's, and the case a duplicate joined."""
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
    entries = [{"case_id": UUID(event.subject), **entry}]
    if isinstance(event.data, ReportMerged):
        entries.append({"case_id": event.data.into_case_id, **entry})
    return entries


def _case_file(ctx: ServiceContext) -> BatchHandler:
    async def apply(tx: Transaction, events: Sequence[Event]) -> None:
        # A batch in three statements or so rather than two or three per event: this consumer
        # reads every event of every service. Event by event (a batch that failed), it is the same
        # code on a batch of one.
        await tx.session.execute(timeline.insert(), [entry for event in events for entry in _timeline_entries(event)])
        touching = [event for event in events if _touches_case(event)]
        if not touching:
            return  # reports and filings only: their rows were written with them
        rows = await _case_rows(tx, {UUID(event.subject) for event in touching})
        pending: dict[UUID, dict[str, Any]] = {}
        for event in touching:
            case_id = UUID(event.subject)
            changes = _follow(rows.get(case_id), event)
            if changes and case_id in rows:
                pending.setdefault(case_id, {}).update(changes)
        now = ctx.clock.now()
        for case_id, changes in sorted(pending.items()):
            await tx.session.execute(update(cases).where(cases.c.id == case_id).values(updated_at=now, **changes))

    return apply


def _touches_case(event: Event) -> bool:
    """Whether ``event`` changes the case's row (its status, department, deadline or closure)."""
    return event.type in _STATUS_AFTER or isinstance(event.data, CaseResumed | ExtensionApproved)


async def _case_rows(tx: Transaction, case_ids: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
    """The status (and the status before a suspension) of the cases among ``case_ids``."""
    result = await tx.session.execute(
        select(cases.c.id, cases.c.status, cases.c.status_before_suspension).where(cases.c.id.in_(list(case_ids)))
    )
    return {row.id: {"status": row.status, "status_before_suspension": row.status_before_suspension} for row in result}


def _follow(row: dict[str, Any] | None, event: Event) -> dict[str, Any]:
    """The changes ``event`` makes to the case file's row, which follows them in ``row`` too (for
    the next event of the same batch). ``row`` is None for a report that never became a case.
    """
    changes: dict[str, Any] = {}
    data = event.data
    status = _STATUS_AFTER.get(event.type)
    current = None if row is None else row["status"]
    moves = (status is not None or isinstance(data, CaseResumed)) and (
        current is None or status_follows_events(CaseStatus(current))
    )
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
    if moves and isinstance(data, CaseResumed) and row is not None:
        changes["status"] = row["status_before_suspension"]
    if row is not None:
        row.update({key: changes[key] for key in ("status", "status_before_suspension") if key in changes})
    return changes
