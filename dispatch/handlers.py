"""Dispatch's use cases: route, dispatch and re-dispatch, decide extensions, suspend and resume,
and report deadlines that pass.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select, update
from sqlalchemy.engine import RowMapping

from dispatch import domain
from dispatch.domain import DispatchStatus
from dispatch.models import assignments, cases
from shared.city.calendar import TimeBasis
from shared.core.auth import Principal
from shared.core.errors import InvalidInput
from shared.db.rows import Rows
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    DeadlineKind,
    DeadlineMissed,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    SupervisionIssued,
)
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

log = logging.getLogger(__name__)

ROUTING_ACTOR = "routing-rules"
TIMER_ACTOR = "deadline-timer"

CASES = Rows(cases, "case")
_ASSIGNMENT_FIELDS = ("attempt", "department_id", "dispatched_at", "returned_at")


# --- reactions to other services' events -------------------------------------------------


async def on_filed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseFiled) -> None:
    """Route a new case by the rules, or queue it for coordination when no rule names an owner."""
    if data.self_handled:
        return  # closed on the spot by the inspector: nobody to dispatch to
    now = ctx.clock.now()
    await tx.session.execute(
        cases.insert().values(
            id=UUID(event.subject),
            case_number=data.case_number,
            category_code=data.category_code,
            cell_id=data.place.cell_id,
            community_id=data.place.community_id,
            street_id=data.place.street_id,
            district_id=data.place.district_id,
            status=DispatchStatus.COORDINATION,
            attempt=0,
            accepted=False,
            supervision_level=0,
            dispatch_deadline=data.dispatch_deadline,
            filed_at=event.time,
            updated_at=now,
        )
    )
    rule = ctx.city.route(data.category_code, data.place)
    if rule is None:
        tx.emit(ctx.event(CaseQueuedForCoordination(reason="no routing rule names an owner (权属不清)"), event.subject))
        return
    case = await CASES.get(tx, UUID(event.subject))
    await _dispatch(ctx, tx, case, rule.department_id, ROUTING_ACTOR, rule.id)


async def on_returned(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseReturned) -> None:
    """The department sent the case back: it waits for a dispatcher."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None:
        return  # a case dispatch never timed (closed on the spot)
    if case["status"] != DispatchStatus.DISPATCHED or case["department_id"] != data.department_id:
        return  # a stale return from a department the case has already left
    await tx.session.execute(
        update(assignments)
        .where(assignments.c.case_id == case["id"], assignments.c.attempt == case["attempt"])
        .values(returned_at=event.time)
    )
    await CASES.update(
        tx,
        case["id"],
        status=DispatchStatus.RETURNED,
        department_id=None,
        handling_deadline=None,
        deadline_missed_at=None,
        accepted=False,
        **_no_extension(),
    )


async def on_accepted(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseAccepted) -> None:
    """The department signed for the case."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None:
        return  # a case dispatch never timed (closed on the spot)
    if case["department_id"] == data.department_id:
        await CASES.update(tx, case["id"], accepted=True)


async def on_extension_requested(ctx: ServiceContext, tx: Transaction, event: Event, data: ExtensionRequested) -> None:
    """Hold the request for the shift lead, or refuse it at once when it cannot stand."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None:
        return  # a case dispatch never timed (closed on the spot)
    status = DispatchStatus(case["status"])
    if case["department_id"] == data.department_id and domain.check_extension_request(
        status, data.requested_deadline, case["handling_deadline"]
    ):
        await CASES.update(
            tx,
            case["id"],
            extension_deadline=data.requested_deadline,
            extension_reason=data.reason,
            extension_requested_by=data.requested_by,
        )
        return
    reason = f"the case is {status.value}" if status is not DispatchStatus.DISPATCHED else "not after the deadline"
    tx.emit(ctx.event(ExtensionDenied(denied_by=ROUTING_ACTOR, reason=f"request void: {reason}"), event.subject))


async def on_handled(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseHandled) -> None:
    """The department reported back; the deadline still runs until closure."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None:
        return  # a case dispatch never timed (closed on the spot)
    if case["status"] == DispatchStatus.DISPATCHED and case["department_id"] == data.department_id:
        await CASES.update(tx, case["id"], status=DispatchStatus.HANDLED, **_no_extension())


async def on_check_failed(ctx: ServiceContext, tx: Transaction, event: Event, data: CheckFailed) -> None:
    """Rework (返工): back with the same department, against the same deadline."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None:
        return  # a case dispatch never timed (closed on the spot)
    if case["status"] == DispatchStatus.HANDLED:
        await CASES.update(tx, case["id"], status=DispatchStatus.DISPATCHED)


async def on_ended(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseClosed | CaseCancelled) -> None:
    """Closed or cancelled: nothing more to time."""
    row = await CASES.find(tx, UUID(event.subject))
    if row is not None:
        status = DispatchStatus.CLOSED if isinstance(data, CaseClosed) else DispatchStatus.CANCELLED
        await CASES.update(tx, row["id"], status=status, **_no_extension())


# --- commands from the command center -----------------------------------------------------


async def dispatch_case(ctx: ServiceContext, dispatcher: Principal, case_id: UUID, department_id: str) -> RowMapping:
    """Dispatch a queued or returned case by hand, or move a case to another department."""
    try:
        ctx.city.department(department_id)
    except KeyError:
        raise InvalidInput(f"unknown department {department_id!r}", {"department_id": department_id}) from None
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_dispatch(DispatchStatus(case["status"]), department_id, case["department_id"])
        await _dispatch(ctx, tx, case, department_id, dispatcher.username, None)
        return await CASES.get(tx, case_id)


async def approve_extension(ctx: ServiceContext, lead: Principal, case_id: UUID) -> RowMapping:
    """Grant the pending request: the deadline moves to the date asked for."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_decide_extension(DispatchStatus(case["status"]), case["extension_deadline"])
        deadline = case["extension_deadline"]
        await CASES.update(tx, case_id, handling_deadline=deadline, deadline_missed_at=None, **_no_extension())
        tx.emit(ctx.event(ExtensionApproved(approved_by=lead.username, handling_deadline=deadline), case_id))
        return await CASES.get(tx, case_id)


async def deny_extension(ctx: ServiceContext, lead: Principal, case_id: UUID, reason: str) -> RowMapping:
    """Refuse the pending request: the deadline stands."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_decide_extension(DispatchStatus(case["status"]), case["extension_deadline"])
        await CASES.update(tx, case_id, **_no_extension())
        tx.emit(ctx.event(ExtensionDenied(denied_by=lead.username, reason=reason), case_id))
        return await CASES.get(tx, case_id)


async def suspend(ctx: ServiceContext, lead: Principal, case_id: UUID, reason: str) -> RowMapping:
    """Stop the clock (挂账/缓办)."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_suspend(DispatchStatus(case["status"]))
        await CASES.update(
            tx, case_id, status=DispatchStatus.SUSPENDED, suspended_at=ctx.clock.now(), **_no_extension()
        )
        tx.emit(ctx.event(CaseSuspended(suspended_by=lead.username, reason=reason), case_id))
        return await CASES.get(tx, case_id)


async def resume(ctx: ServiceContext, lead: Principal, case_id: UUID) -> RowMapping:
    """Start the clock again; the deadline moves by the time it stood still."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_resume(DispatchStatus(case["status"]))
        category = ctx.city.category(case["category_code"])
        deadline = ctx.calendar.shift(
            case["handling_deadline"], case["suspended_at"], ctx.clock.now(), TimeBasis(category.time_basis)
        )
        await CASES.update(
            tx,
            case_id,
            status=DispatchStatus.DISPATCHED,
            suspended_at=None,
            handling_deadline=deadline,
            deadline_missed_at=None,
        )
        tx.emit(ctx.event(CaseResumed(resumed_by=lead.username, handling_deadline=deadline), case_id))
        return await CASES.get(tx, case_id)


async def supervise(ctx: ServiceContext, lead: Principal, case_id: UUID, note: str) -> RowMapping:
    """Send a supervision notice (督办) by hand; each one raises the level."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        domain.check_can_supervise(DispatchStatus(case["status"]))
        level = case["supervision_level"] + 1
        await CASES.update(tx, case_id, supervision_level=level)
        tx.emit(ctx.event(SupervisionIssued(department_id=case["department_id"], level=level, note=note), case_id))
        return await CASES.get(tx, case_id)


async def get_case(ctx: ServiceContext, case_id: UUID) -> RowMapping:
    """Dispatch's view of a case."""
    async with ctx.store.transaction() as tx:
        return await CASES.get(tx, case_id)


async def export_page(
    ctx: ServiceContext, after: UUID | None, limit: int
) -> list[tuple[RowMapping, list[dict[str, Any]]]]:
    """Up to ``limit`` cases with ids after ``after``, in id order, each with its dispatch attempts
    in order (a page of the export).
    """
    page = select(cases).order_by(cases.c.id).limit(limit)
    if after is not None:
        page = page.where(cases.c.id > after)
    case = page.subquery("page")
    attempt_columns = [assignments.c[name].label(f"assignment_{name}") for name in _ASSIGNMENT_FIELDS]
    # One statement, so a case and its attempts come from one snapshot.
    query = (
        select(case, *attempt_columns)
        .select_from(case.outerjoin(assignments, assignments.c.case_id == case.c.id))
        .order_by(case.c.id, assignments.c.attempt)
    )
    async with ctx.store.engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    result: list[tuple[RowMapping, list[dict[str, Any]]]] = []
    for row in rows:
        if not result or result[-1][0]["id"] != row["id"]:
            result.append((row, []))
        if row["assignment_attempt"] is not None:
            result[-1][1].append({name: row[f"assignment_{name}"] for name in _ASSIGNMENT_FIELDS})
    return result


# --- time passing ----------------------------------------------------------------------------


async def report_missed_deadlines(ctx: ServiceContext, batch: int = 500) -> int:
    """Emit ``case.deadline_missed`` and a first supervision notice for every open case whose
    handling deadline has passed; the number reported. Suspended cases are not timed.
    """
    now = ctx.clock.now()
    async with ctx.store.transaction() as tx:
        query = unreported_missed_deadlines(now, batch)
        if tx.session.bind is not None and tx.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # replicas split the work
        due = (await tx.session.execute(query)).mappings().all()
        for case in due:
            level = max(case["supervision_level"], 1)
            await CASES.update(tx, case["id"], deadline_missed_at=now, supervision_level=level)
            tx.emit(
                ctx.event(
                    DeadlineMissed(
                        kind=DeadlineKind.HANDLING,
                        deadline=case["handling_deadline"],
                        department_id=case["department_id"],
                    ),
                    case["id"],
                )
            )
            if case["supervision_level"] < 1:
                tx.emit(
                    ctx.event(
                        SupervisionIssued(
                            department_id=case["department_id"],
                            level=1,
                            note=f"case {case['case_number']} is past its handling deadline",
                        ),
                        case["id"],
                    )
                )
        return len(due)


def unreported_missed_deadlines(now: datetime, batch: int) -> Select[Any]:
    """The cases whose clock runs and whose deadline has passed by ``now``, not reported yet,
    earliest deadline first (the index ``ix_dispatch_cases_timer`` serves exactly this)."""
    return (
        select(cases)
        .where(
            cases.c.status.in_([s.value for s in domain.CLOCK_RUNNING]),
            cases.c.deadline_missed_at.is_(None),
            cases.c.handling_deadline <= now,
        )
        .order_by(cases.c.handling_deadline)
        .limit(batch)
    )


async def run_deadline_timer(ctx: ServiceContext) -> None:
    """The persisted timer: deadlines live in the table, so a restart loses none."""
    while True:
        try:
            while await report_missed_deadlines(ctx) > 0:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("deadline timer failed; retrying", exc_info=True)
        await asyncio.sleep(ctx.settings.timer_interval_seconds)


# --- helpers ---------------------------------------------------------------------------------


async def _dispatch(
    ctx: ServiceContext, tx: Transaction, case: RowMapping, department_id: str, by: str, rule_id: str | None
) -> None:
    now = ctx.clock.now()
    deadline = ctx.deadline(now, ctx.city.category(case["category_code"]), "handling")
    attempt = case["attempt"] + 1
    await CASES.update(
        tx,
        case["id"],
        status=DispatchStatus.DISPATCHED,
        department_id=department_id,
        attempt=attempt,
        rule_id=rule_id,
        dispatched_at=now,
        accepted=False,
        handling_deadline=deadline,
        deadline_missed_at=None,
        **_no_extension(),
    )
    await tx.session.execute(
        assignments.insert().values(case_id=case["id"], attempt=attempt, department_id=department_id, dispatched_at=now)
    )
    tx.emit(
        ctx.event(
            CaseDispatched(
                department_id=department_id,
                dispatched_by=by,
                handling_deadline=deadline,
                attempt=attempt,
                rule_id=rule_id,
            ),
            case["id"],
            at=now,
        )
    )


def _no_extension() -> dict[str, Any]:
    return {"extension_deadline": None, "extension_reason": None, "extension_requested_by": None}
