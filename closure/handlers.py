"""Closure's use cases: check tasks, closing, rework, cancellation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.engine import RowMapping

from closure import domain
from closure.domain import ClosureStatus
from closure.models import cases
from shared.core.auth import Principal
from shared.core.errors import OutOfScope
from shared.db.rows import Rows
from shared.events.catalogue import (
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseResumed,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    ExtensionApproved,
)
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

# --- following the case ----------------------------------------------------------------------

CASES = Rows(cases, "case")


async def on_filed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseFiled) -> None:
    """Know the case and its inspector; a problem the inspector fixed on the spot closes now."""
    case_id = UUID(event.subject)
    inspector_id = data.inspector_id or ctx.city.inspector_for(data.place.cell_id).id
    now = ctx.clock.now()
    await tx.session.execute(
        cases.insert().values(
            id=case_id,
            case_number=data.case_number,
            category_code=data.category_code,
            source=data.source.value,
            cell_id=data.place.cell_id,
            inspector_id=inspector_id,
            status=ClosureStatus.OPEN,
            checks=0,
            checks_requested=0,
            checks_on_time=0,
            checks_failed=0,
            updated_at=now,
        )
    )
    if data.self_handled:
        await _close(ctx, tx, case_id, None, closed_by=data.filed_by, self_handled=True)


async def on_deadline(
    ctx: ServiceContext, tx: Transaction, event: Event, data: CaseDispatched | ExtensionApproved | CaseResumed
) -> None:
    """The handling deadline in force, which decides whether the closure is on time."""
    values: dict[str, Any] = {"handling_deadline": data.handling_deadline}
    if isinstance(data, CaseDispatched):
        values["department_id"] = data.department_id
    await CASES.update(tx, UUID(event.subject), **values)


async def on_handled(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseHandled) -> None:
    """A check task to the cell's inspector, with its own time limit."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None or case["status"] != ClosureStatus.OPEN:
        return
    now = ctx.clock.now()
    check_deadline = ctx.deadline(now, ctx.city.category(case["category_code"]), "check")
    await CASES.update(
        tx,
        case["id"],
        status=ClosureStatus.CHECKING,
        handled_at=now,
        handling_result=data.result,
        check_deadline=check_deadline,
        checks_requested=case["checks_requested"] + 1,
    )
    tx.emit(ctx.event(CheckRequested(inspector_id=case["inspector_id"], check_deadline=check_deadline), case["id"]))


# --- the inspector's and the shift lead's actions -----------------------------------------------


async def check(
    ctx: ServiceContext, inspector: Principal, case_id: UUID, *, passed: bool, note: str | None, photos: list[str]
) -> RowMapping:
    """The inspector's verdict on site: passed closes the case, failed sends it back for rework."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        if case["inspector_id"] != inspector.inspector_id:
            raise OutOfScope("this check task belongs to another inspector")
        domain.check_can_check(ClosureStatus(case["status"]))
        now = ctx.clock.now()
        counts = {
            "checks": case["checks"] + 1,
            "checks_on_time": case["checks_on_time"] + int(domain.check_answered_on_time(now, case["check_deadline"])),
        }
        if passed:
            verdict = CheckPassed(inspector_id=case["inspector_id"], note=note, photos=photos)
            tx.emit(ctx.event(verdict, case_id, at=now))
            await CASES.update(tx, case_id, **counts)
            await _close(ctx, tx, case_id, case["handling_deadline"], closed_by=inspector.username, self_handled=False)
        else:
            await CASES.update(
                tx,
                case_id,
                status=ClosureStatus.OPEN,
                check_deadline=None,
                checks_failed=case["checks_failed"] + 1,
                **counts,
            )
            failed = CheckFailed(inspector_id=case["inspector_id"], reason=note or "not solved", photos=photos)
            tx.emit(ctx.event(failed, case_id, at=now))
        return await CASES.get(tx, case_id)


async def cancel(ctx: ServiceContext, lead: Principal, case_id: UUID, reason: str) -> RowMapping:
    """Void a case (作废)."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_cancel(ClosureStatus(case["status"]))
        await CASES.update(tx, case_id, status=ClosureStatus.CANCELLED)
        tx.emit(ctx.event(CaseCancelled(cancelled_by=lead.username, reason=reason), case_id))
        return await CASES.get(tx, case_id)


async def get_case(ctx: ServiceContext, case_id: UUID) -> RowMapping:
    """Closure's view of one case."""
    async with ctx.store.transaction() as tx:
        return await CASES.get(tx, case_id)


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` cases with ids after ``after``, in id order (a page of the export)."""
    return await CASES.page(ctx.store.engine, after, limit)


async def _close(
    ctx: ServiceContext,
    tx: Transaction,
    case_id: UUID,
    handling_deadline: datetime | None,
    *,
    closed_by: str,
    self_handled: bool,
) -> None:
    now = ctx.clock.now()
    on_time = domain.closed_on_time(now, handling_deadline)
    await CASES.update(tx, case_id, status=ClosureStatus.CLOSED, closed_at=now, on_time=on_time)
    tx.emit(
        ctx.event(
            CaseClosed(
                closed_by=closed_by,
                on_time=on_time,
                handling_deadline=handling_deadline,
                self_handled=self_handled,
            ),
            case_id,
            at=now,
        )
    )
