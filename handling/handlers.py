"""Handling's use cases: the department's four actions, and following the case from the other
services' events. Writes only; the reads are in ``queries``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from handling import domain, queries
from handling.domain import Decision, Task, TaskStatus
from handling.models import CASES, cases
from shared.core.auth import Principal
from shared.db.driver import DriverStatement, Row
from shared.events.catalogue import (
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseReopened,
    CaseResumed,
    CaseSuspended,
    CheckFailed,
    DeadlineKind,
    DeadlineRecomputed,
    ExtensionApproved,
    ExtensionDenied,
    ReportReceived,
)
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

# Built once, and run on the driver: every report runs it, and a statement built per event costs
# more CPU to build and key for the cache than to run.
_INSERT_CASE = DriverStatement(cases.insert())

# --- the department's actions ----------------------------------------------------------------


async def accept(ctx: ServiceContext, user: Principal, case_id: UUID) -> Row:
    """Sign for the case (签收)."""
    return await _act(ctx, user, case_id, lambda task: domain.accept(task, user.username))


async def return_case(ctx: ServiceContext, user: Principal, case_id: UUID, reason: str) -> Row:
    """Send the case back as not the department's (回退)."""
    return await _act(ctx, user, case_id, lambda task: domain.return_case(task, user.username, reason))


async def request_extension(
    ctx: ServiceContext, user: Principal, case_id: UUID, requested_deadline: datetime, reason: str
) -> Row:
    """Ask the shift lead for more time (申请延期)."""
    return await _act(
        ctx, user, case_id, lambda task: domain.request_extension(task, user.username, requested_deadline, reason)
    )


async def report_handled(ctx: ServiceContext, user: Principal, case_id: UUID, result: str, photos: list[str]) -> Row:
    """Report the problem handled, with photos (处置反馈); the event carries the instant the row
    does."""
    now = ctx.clock.now()
    return await _act(
        ctx, user, case_id, lambda task: domain.report_handled(task, user.username, result, photos, now), at=now
    )


async def _act(
    ctx: ServiceContext,
    user: Principal,
    case_id: UUID,
    decide: Callable[[Task], Decision[Any]],
    *,
    at: datetime | None = None,
) -> Row:
    """Load the department's case locked, decide, save the changes and emit the event; the row."""
    async with ctx.store.transaction() as tx:
        row = await queries.own_case_for_update(tx, user, case_id)
        decision = decide(
            Task(
                status=TaskStatus(row["status"]),
                department_id=row["department_id"],
                handling_deadline=row["handling_deadline"],
                extension_deadline=row["extension_deadline"],
                first_handled_at=row["first_handled_at"],
            )
        )
        await CASES.update(tx, case_id, **decision.changes)
        tx.emit(ctx.event(decision.event, case_id, at=at))
        return await CASES.get(tx, case_id)


# --- following the case ----------------------------------------------------------------------


async def on_report_received(ctx: ServiceContext, tx: Transaction, event: Event, data: ReportReceived) -> None:
    """Keep what the department will need to see: the description, the place, the photos."""
    await _INSERT_CASE.run(
        tx.connection,
        {
            "id": UUID(event.subject),
            "category_code": data.category_code,
            "description": data.description,
            "lon": data.point.lon,
            "lat": data.point.lat,
            "cell_id": data.place.cell_id,
            "street_id": data.place.street_id,
            "district_id": data.place.district_id,
            "report_photos": data.photos,
            "status": TaskStatus.REPORTED,
            "updated_at": ctx.clock.now(),
        },
    )


async def on_filed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseFiled) -> None:
    """The case number and the category as filed."""
    await CASES.update(tx, UUID(event.subject), case_number=data.case_number, category_code=data.category_code)


async def on_dispatched(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseDispatched) -> None:
    """A new task in the department's inbox (and out of the previous department's)."""
    await CASES.update(tx, UUID(event.subject), **domain.dispatched(data, event.time))


async def on_extension_approved(ctx: ServiceContext, tx: Transaction, event: Event, data: ExtensionApproved) -> None:
    """More time: the deadline moves."""
    await CASES.update(tx, UUID(event.subject), **domain.extension_approved(data.handling_deadline))


async def on_extension_denied(ctx: ServiceContext, tx: Transaction, event: Event, _data: ExtensionDenied) -> None:
    """The request is answered: no longer pending."""
    await CASES.update(tx, UUID(event.subject), **domain.extension_denied())


async def on_suspended(ctx: ServiceContext, tx: Transaction, event: Event, _data: CaseSuspended) -> None:
    """Nothing to do while suspended; remember where the task was."""
    case_id = UUID(event.subject)
    row = await CASES.find(tx, case_id, for_update=True)
    if row is not None:
        await CASES.update(tx, case_id, **domain.suspended(TaskStatus(row["status"])))


async def on_resumed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseResumed) -> None:
    """Back where the task was, with the deadline moved by the time the clock stood still."""
    case_id = UUID(event.subject)
    row = await CASES.find(tx, case_id, for_update=True)
    if row is not None:
        before = row["status_before_suspension"]
        status, before_suspension = TaskStatus(row["status"]), TaskStatus(before) if before else None
        changes = domain.resumed(status, before_suspension, data.handling_deadline, provisional=data.provisional)
        await CASES.update(tx, case_id, **changes)


async def on_deadline_recomputed(ctx: ServiceContext, tx: Transaction, event: Event, data: DeadlineRecomputed) -> None:
    """Dispatch counted a provisional handling deadline again: the one in force now."""
    if data.kind is DeadlineKind.HANDLING:
        await CASES.update(
            tx, UUID(event.subject), **domain.deadline_recomputed(data.deadline, provisional=data.provisional)
        )


async def on_check_failed(ctx: ServiceContext, tx: Transaction, event: Event, data: CheckFailed) -> None:
    """Back in the inbox for rework (返工), with the inspector's reason."""
    await CASES.update(tx, UUID(event.subject), **domain.check_failed(data.reason))


async def on_reopened(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseReopened) -> None:
    """A closed case reopened: back in the department's inbox for rework, with the citizen's reason."""
    case_id = UUID(event.subject)
    row = await CASES.find(tx, case_id, for_update=True)
    if row is not None:
        changes = domain.reopened(TaskStatus(row["status"]), data.reason)
        if changes:
            await CASES.update(tx, case_id, **changes)


async def on_ended(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseClosed | CaseCancelled) -> None:
    """Closed or cancelled: out of every inbox."""
    await CASES.update(tx, UUID(event.subject), **domain.ended(data))
