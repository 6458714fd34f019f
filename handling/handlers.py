"""Handling's use cases: the department's inbox and its four actions, plus following the case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.engine import RowMapping

from handling import domain
from handling.domain import TaskStatus
from handling.models import cases
from shared.core.auth import Principal
from shared.core.errors import NotFound
from shared.db.rows import Rows
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    ReportReceived,
)
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

# --- following the case ----------------------------------------------------------------------

CASES = Rows(cases, "case")


async def on_report_received(ctx: ServiceContext, tx: Transaction, event: Event, data: ReportReceived) -> None:
    """Keep what the department will need to see: the description, the place, the photos."""
    await tx.session.execute(
        cases.insert().values(
            id=UUID(event.subject),
            category_code=data.category_code,
            description=data.description,
            lon=data.point.lon,
            lat=data.point.lat,
            cell_id=data.place.cell_id,
            street_id=data.place.street_id,
            district_id=data.place.district_id,
            report_photos=data.photos,
            status=TaskStatus.REPORTED,
            updated_at=ctx.clock.now(),
        )
    )


async def on_filed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseFiled) -> None:
    """The case number and the category as filed."""
    await CASES.update(tx, UUID(event.subject), case_number=data.case_number, category_code=data.category_code)


async def on_dispatched(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseDispatched) -> None:
    """A new task in the department's inbox (and out of the previous department's)."""
    await CASES.update(
        tx,
        UUID(event.subject),
        status=TaskStatus.ASSIGNED,
        department_id=data.department_id,
        dispatched_at=event.time,
        handling_deadline=data.handling_deadline,
        extension_deadline=None,
        accepted_by=None,
        result=None,
        result_photos=None,
        handled_at=None,
        rework_reason=None,
    )


async def on_deadline_moved(
    ctx: ServiceContext, tx: Transaction, event: Event, data: ExtensionApproved | CaseResumed
) -> None:
    """An approved extension or a resumption moves the deadline."""
    values: dict[str, Any] = {"handling_deadline": data.handling_deadline, "extension_deadline": None}
    if isinstance(data, CaseResumed):
        values["status"] = cases.c.status_before_suspension
    await CASES.update(tx, UUID(event.subject), **values)


async def on_extension_denied(ctx: ServiceContext, tx: Transaction, event: Event, _data: ExtensionDenied) -> None:
    """The request is answered: no longer pending."""
    await CASES.update(tx, UUID(event.subject), extension_deadline=None)


async def on_suspended(ctx: ServiceContext, tx: Transaction, event: Event, _data: CaseSuspended) -> None:
    """Nothing to do while suspended; remember where the task was."""
    await CASES.update(tx, UUID(event.subject), status_before_suspension=cases.c.status, status=TaskStatus.SUSPENDED)


async def on_check_failed(ctx: ServiceContext, tx: Transaction, event: Event, data: CheckFailed) -> None:
    """Back in the inbox for rework (返工), with the inspector's reason."""
    await CASES.update(tx, UUID(event.subject), status=TaskStatus.REWORK, rework_reason=data.reason)


async def on_ended(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseClosed | CaseCancelled) -> None:
    """Closed or cancelled: out of every inbox."""
    status = TaskStatus.CLOSED if isinstance(data, CaseClosed) else TaskStatus.CANCELLED
    await CASES.update(tx, UUID(event.subject), status=status)


# --- the department's actions ----------------------------------------------------------------


async def accept(ctx: ServiceContext, user: Principal, case_id: UUID) -> RowMapping:
    """Sign for the case (签收)."""
    async with ctx.store.transaction() as tx:
        case = await _own_case(tx, user, case_id)
        domain.check_can_accept(TaskStatus(case["status"]))
        await CASES.update(tx, case_id, status=TaskStatus.ACCEPTED, accepted_by=user.username)
        tx.emit(ctx.event(CaseAccepted(department_id=case["department_id"], accepted_by=user.username), case_id))
        return await CASES.get(tx, case_id)


async def give_back(ctx: ServiceContext, user: Principal, case_id: UUID, reason: str) -> RowMapping:
    """Send the case back as not the department's (回退)."""
    async with ctx.store.transaction() as tx:
        case = await _own_case(tx, user, case_id)
        domain.check_can_return(TaskStatus(case["status"]))
        await CASES.update(tx, case_id, status=TaskStatus.RETURNED)
        tx.emit(
            ctx.event(
                CaseReturned(department_id=case["department_id"], returned_by=user.username, reason=reason), case_id
            )
        )
        return await CASES.get(tx, case_id)


async def request_extension(
    ctx: ServiceContext, user: Principal, case_id: UUID, requested_deadline: datetime, reason: str
) -> RowMapping:
    """Ask the shift lead for more time (申请延期)."""
    async with ctx.store.transaction() as tx:
        case = await _own_case(tx, user, case_id)
        domain.check_can_request_extension(
            TaskStatus(case["status"]), case["extension_deadline"], requested_deadline, case["handling_deadline"]
        )
        await CASES.update(tx, case_id, extension_deadline=requested_deadline)
        tx.emit(
            ctx.event(
                ExtensionRequested(
                    department_id=case["department_id"],
                    requested_by=user.username,
                    requested_deadline=requested_deadline,
                    reason=reason,
                ),
                case_id,
            )
        )
        return await CASES.get(tx, case_id)


async def report_handled(
    ctx: ServiceContext, user: Principal, case_id: UUID, result: str, photos: list[str]
) -> RowMapping:
    """Report the problem handled, with photos (处置反馈)."""
    async with ctx.store.transaction() as tx:
        case = await _own_case(tx, user, case_id)
        domain.check_can_report_handled(TaskStatus(case["status"]))
        now = ctx.clock.now()
        await CASES.update(
            tx,
            case_id,
            status=TaskStatus.HANDLED,
            result=result,
            result_photos=photos,
            handled_at=now,
            first_handled_at=case["first_handled_at"] or now,
        )
        tx.emit(
            ctx.event(
                CaseHandled(
                    department_id=case["department_id"], handled_by=user.username, result=result, photos=photos
                ),
                case_id,
                at=now,
            )
        )
        return await CASES.get(tx, case_id)


async def own_case(ctx: ServiceContext, user: Principal, case_id: UUID) -> RowMapping:
    """One of the department's cases."""
    async with ctx.store.transaction() as tx:
        return await _own_case(tx, user, case_id)


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` cases with ids after ``after``, in id order (a page of the export)."""
    return await CASES.page(ctx.store.engine, after, limit)


async def _own_case(tx: Transaction, user: Principal, case_id: UUID) -> RowMapping:
    # Another department's case is reported as missing, not as forbidden: its existence is not
    # this department's business either.
    row = await CASES.find(tx, case_id, for_update=True)
    if row is None or row["department_id"] is None or row["department_id"] != user.department_id:
        raise NotFound(f"no case {case_id} in your department's inbox")
    return row
