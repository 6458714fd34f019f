"""Closure's use cases: check tasks, closing, rework, reopening after a callback, cancellation.
Writes only: each loads the case, lets the domain decide, and saves the changes with their events
in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select

from closure import domain
from closure.domain import CaseState, ClosureStatus, Decision
from closure.models import CASES, cases
from shared.core.auth import Principal
from shared.db.driver import DriverStatement, Row
from shared.events.catalogue import (
    CallbackRecorded,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseResumed,
    DeadlineKind,
    DeadlineRecomputed,
    ExtensionApproved,
)
from shared.events.envelope import Event
from shared.integration.signing import UnknownHotline
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_rows

# Built once, and run on the driver: every filing runs it, and a statement built per event costs
# more CPU to build and key for the cache than to run.
_INSERT_CASE = DriverStatement(cases.insert())

# --- following the case ----------------------------------------------------------------------


async def on_filed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseFiled) -> None:
    """Know the case and its inspector; a problem the inspector fixed on the spot closes now."""
    case_id = UUID(event.subject)
    inspector_id = data.inspector_id or ctx.city.inspector_for(data.place.cell_id).id
    now = ctx.clock.now()
    decision = domain.decide_filing(data, inspector_id, now)
    await _INSERT_CASE.run(tx.connection, {"id": case_id, "updated_at": now, **decision.changes})
    _emit(ctx, tx, case_id, decision, now)


async def on_deadline(
    ctx: ServiceContext, tx: Transaction, event: Event, data: CaseDispatched | ExtensionApproved | CaseResumed
) -> None:
    """The handling deadline in force, which decides whether the closure is on time."""
    department_id = data.department_id if isinstance(data, CaseDispatched) else None
    decision = domain.decide_deadline(data.handling_deadline, department_id, provisional=data.provisional)
    await CASES.update(tx, UUID(event.subject), **decision.changes)


async def on_deadline_recomputed(ctx: ServiceContext, tx: Transaction, event: Event, data: DeadlineRecomputed) -> None:
    """Dispatch counted a provisional handling deadline again: the one in force now."""
    if data.kind is DeadlineKind.HANDLING:
        decision = domain.decide_deadline(data.deadline, provisional=data.provisional)
        await CASES.update(tx, UUID(event.subject), **decision.changes)


async def on_handled(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseHandled) -> None:
    """A check task to the cell's inspector, with its own time limit."""
    case = await CASES.find(tx, UUID(event.subject))
    if case is None or not domain.may_request_check(ClosureStatus(case["status"])):
        return
    now = ctx.clock.now()
    due = ctx.deadline(now, ctx.city.category(case["category_code"]), "check")
    decision = domain.decide_check_request(
        _state(case), result=data.result, check_deadline=due.at, now=now, provisional=due.provisional
    )
    await _save(ctx, tx, case["id"], decision, now)


async def on_callback_recorded(ctx: ServiceContext, tx: Transaction, event: Event, data: CallbackRecorded) -> None:
    """The hotline's callback to the citizen (回访): an unsatisfied verdict reopens the closed case
    for rework where the hotline's rule (the city's ``integrations.yaml``) says so."""
    case = await CASES.find(tx, UUID(event.subject), for_update=True)
    if case is None:
        return
    decision = domain.decide_callback(_state(case), data, reopen_on_unsatisfied=_reopens_on_unsatisfied(ctx, data))
    if decision.events:
        await _save(ctx, tx, case["id"], decision, ctx.clock.now())


def _reopens_on_unsatisfied(ctx: ServiceContext, callback: CallbackRecorded) -> bool:
    """The rule of the hotline that called back; a hotline no longer in the configuration (removed
    after intake took its callback) has no rule left to reopen by."""
    try:
        return ctx.integrations.hotline(callback.hotline_id).reopen_on_unsatisfied
    except UnknownHotline:
        return False


# --- time passing ------------------------------------------------------------------------------


async def report_missed_check(ctx: ServiceContext, tx: Transaction, case: Row, now: datetime) -> None:
    """The check timer found the case's open check past its deadline at ``now``: report it once."""
    await _save(ctx, tx, case["id"], domain.decide_check_missed(_state(case), now), now)


async def recompute_provisional_deadlines(ctx: ServiceContext) -> int:
    """Count again the deadlines of the open checks that were counted on a provisional calendar
    year, from when the case was reported handled, and tell each one that moved or became
    official as ``case.deadline_recomputed``; the number of those."""
    now = ctx.clock.now()

    async def recompute(tx: Transaction, case: Row) -> int:
        due = ctx.deadline(case["handled_at"], ctx.city.category(case["category_code"]), "check")
        decision = domain.decide_check_recompute(_state(case), due.at, provisional=due.provisional)
        if decision.events:
            await _save(ctx, tx, case["id"], decision, now)
        return len(decision.events)

    query = select(cases).where(
        cases.c.status == ClosureStatus.CHECKING,
        cases.c.check_deadline_provisional,
        cases.c.check_missed_at.is_(None),
    )
    return await recompute_rows(ctx, query, cases.c.id, recompute)


# --- the inspector's and the shift lead's actions -----------------------------------------------


async def check(
    ctx: ServiceContext, inspector: Principal, case_id: UUID, *, passed: bool, note: str | None, photos: list[str]
) -> Row:
    """The inspector's verdict on site: passed closes the case, failed sends it back for rework."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        now = ctx.clock.now()
        decision = domain.decide_check(
            _state(case),
            inspector_id=inspector.inspector_id,
            closed_by=inspector.username,
            passed=passed,
            note=note,
            photos=photos,
            now=now,
        )
        await _save(ctx, tx, case_id, decision, now)
        return await CASES.get(tx, case_id)


async def cancel(ctx: ServiceContext, lead: Principal, case_id: UUID, reason: str) -> Row:
    """Void a case (作废)."""
    async with ctx.store.transaction() as tx:
        case = await CASES.get(tx, case_id, for_update=True)
        decision = domain.decide_cancel(ClosureStatus(case["status"]), cancelled_by=lead.username, reason=reason)
        await _save(ctx, tx, case_id, decision, ctx.clock.now())
        return await CASES.get(tx, case_id)


def _state(case: Row) -> CaseState:
    return CaseState(
        status=ClosureStatus(case["status"]),
        inspector_id=case["inspector_id"],
        handling_deadline=case["handling_deadline"],
        check_deadline=case["check_deadline"],
        check_missed_at=case["check_missed_at"],
        checks=case["checks"],
        checks_requested=case["checks_requested"],
        checks_on_time=case["checks_on_time"],
        checks_failed=case["checks_failed"],
        check_deadline_provisional=case["check_deadline_provisional"],
        department_id=case["department_id"],
        reopens=case["reopens"],
    )


async def _save(ctx: ServiceContext, tx: Transaction, case_id: UUID, decision: Decision, now: datetime) -> None:
    await CASES.update(tx, case_id, **decision.changes)
    _emit(ctx, tx, case_id, decision, now)


def _emit(ctx: ServiceContext, tx: Transaction, case_id: UUID, decision: Decision, now: datetime) -> None:
    # Stamped with the instant written in the row, so the row and its events agree (ctx.event).
    for payload in decision.events:
        tx.emit(ctx.event(payload, case_id, at=now))
