"""Dispatch's use cases: route, dispatch and re-dispatch, decide extensions, suspend and resume.

Each loads the case, asks the domain for the decision and saves it with its events in one
transaction. Reads for the API live in ``queries``; the deadline timer in ``timer``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from sqlalchemy import bindparam, select, update

from dispatch import domain
from dispatch.domain import ROUTING_ACTOR, CaseState, Decision, Dispatch
from dispatch.models import CASES, assignments, cases
from shared.core.auth import Principal
from shared.core.errors import DomainError, InvalidInput
from shared.db.driver import DriverStatement, Row
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseReopened,
    CaseReturned,
    CheckFailed,
    ExtensionRequested,
)
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_rows

# Built once, and run on the driver: the reactions run them for nearly every case, and a statement
# built per event costs more CPU to build and key for the cache than to run.
_INSERT_CASE = DriverStatement(cases.insert())
_INSERT_ASSIGNMENT = DriverStatement(assignments.insert())
_RETURN_ASSIGNMENT = DriverStatement(
    update(assignments)
    .where(assignments.c.case_id == bindparam("case_id_"), assignments.c.attempt == bindparam("attempt_"))
    .values(returned_at=bindparam("returned_at"))
)

# --- reactions to other services' events -------------------------------------------------


async def on_filed(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseFiled) -> None:
    """Route a new case by the rules, or queue it for coordination when no rule names an owner."""
    case_id = UUID(event.subject)
    row = domain.filed_case(case_id, data, event.time)
    if row is None:
        return  # closed on the spot by the inspector: nobody to dispatch to
    now = ctx.clock.now()
    await _INSERT_CASE.run(tx.connection, {**row, "updated_at": now})
    rule = ctx.city.route(data.category_code, data.place)
    if rule is None:
        tx.emit(ctx.event(domain.UNCLEAR_OWNERSHIP, case_id))
        return
    case, command = CaseState.of(row), Dispatch(rule.department_id, ROUTING_ACTOR, now, rule.id)
    try:
        decision = _decide_dispatch(ctx, case, command)
    except DomainError as exc:
        # A rule that cannot be applied (a deadline in a year the calendar cannot serve) must not
        # lose the case, nor retry into the dead letters: it waits where a dispatcher sees why.
        reason = f"routing rule {rule.id} could not dispatch it: {exc.message}"
        tx.emit(ctx.event(CaseQueuedForCoordination(reason=reason), case_id))
        return
    await _save_dispatch(ctx, tx, case, command, decision)


async def on_returned(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseReturned) -> None:
    """The department sent the case back: it waits for a dispatcher."""
    case = await _case(tx, event)
    if case is None:
        return  # a case dispatch never timed (closed on the spot)
    decision = domain.decide_return(case, data.department_id)
    if decision is None:
        return  # a stale return from a department the case has already left
    await _RETURN_ASSIGNMENT.run(
        tx.connection, {"case_id_": case.id, "attempt_": case.attempt, "returned_at": event.time}
    )
    await save(ctx, tx, case.id, decision)


async def on_accepted(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseAccepted) -> None:
    """The department signed for the case."""
    await _react(ctx, tx, event, lambda case: domain.decide_accept(case, data.department_id))


async def on_extension_requested(ctx: ServiceContext, tx: Transaction, event: Event, data: ExtensionRequested) -> None:
    """Hold the request for the shift lead, or refuse it at once when it cannot stand."""
    await _react(ctx, tx, event, lambda case: domain.decide_extension_request(case, data))


async def on_handled(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseHandled) -> None:
    """The department reported back; the deadline still runs until closure."""
    await _react(ctx, tx, event, lambda case: domain.decide_handled(case, data.department_id))


async def on_check_failed(ctx: ServiceContext, tx: Transaction, event: Event, data: CheckFailed) -> None:
    """Rework (返工): back with the same department, against the same deadline."""
    await _react(ctx, tx, event, domain.decide_check_failed)


async def on_reopened(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseReopened) -> None:
    """A closed case reopened: rework by the same department, against the same deadline."""
    await _react(ctx, tx, event, domain.decide_reopened)


async def on_ended(ctx: ServiceContext, tx: Transaction, event: Event, data: CaseClosed | CaseCancelled) -> None:
    """Closed or cancelled: nothing more to time."""
    await _react(ctx, tx, event, lambda _case: domain.decide_ended(cancelled=isinstance(data, CaseCancelled)))


# --- commands from the command center -----------------------------------------------------


async def dispatch_case(ctx: ServiceContext, dispatcher: Principal, case_id: UUID, department_id: str) -> Row:
    """Dispatch a queued or returned case by hand, or move a case to another department."""
    try:
        ctx.city.department(department_id)
    except KeyError:
        raise InvalidInput(f"unknown department {department_id!r}", {"department_id": department_id}) from None
    async with ctx.store.transaction() as tx:
        case = CaseState.of(await CASES.get(tx, case_id, for_update=True))
        command = Dispatch(department_id, dispatcher.username, ctx.clock.now())
        await _save_dispatch(ctx, tx, case, command, _decide_dispatch(ctx, case, command))
        return await CASES.get(tx, case_id)


async def approve_extension(ctx: ServiceContext, lead: Principal, case_id: UUID) -> Row:
    """Grant the pending request: the deadline moves to the date asked for."""
    return await _command(ctx, case_id, lambda case: domain.decide_approve_extension(case, lead.username))


async def deny_extension(ctx: ServiceContext, lead: Principal, case_id: UUID, reason: str) -> Row:
    """Refuse the pending request: the deadline stands."""
    return await _command(ctx, case_id, lambda case: domain.decide_deny_extension(case, lead.username, reason))


async def suspend(ctx: ServiceContext, lead: Principal, case_id: UUID, reason: str) -> Row:
    """Stop the clock (挂账/缓办)."""
    return await _command(
        ctx, case_id, lambda case: domain.decide_suspend(case, lead.username, reason, ctx.clock.now())
    )


async def resume(ctx: ServiceContext, lead: Principal, case_id: UUID) -> Row:
    """Start the clock again; the deadline moves by the time it stood still."""

    def decide(case: CaseState) -> Decision:
        category = ctx.city.category(case.category_code)
        return domain.decide_resume(case, lead.username, ctx.clock.now(), ctx.calendar, category)

    return await _command(ctx, case_id, decide)


async def supervise(ctx: ServiceContext, lead: Principal, case_id: UUID, note: str) -> Row:
    """Send a supervision notice (督办) by hand; each one raises the level."""
    return await _command(ctx, case_id, lambda case: domain.decide_supervise(case, note))


# --- the calendar learnt an official year ----------------------------------------------------


async def recompute_provisional_deadlines(ctx: ServiceContext) -> int:
    """Count again the running deadlines that were counted on a provisional calendar year (handling
    deadlines, and dispatch deadlines of cases never dispatched yet), and tell each one that moved
    or became official as ``case.deadline_recomputed``; the number of those."""
    now = ctx.clock.now()

    async def recompute(tx: Transaction, row: Row) -> int:
        case = CaseState.of(row)
        decision = domain.decide_recompute(case, ctx.calendar, ctx.city.category(case.category_code), now)
        await save(ctx, tx, case.id, decision, at=now)
        return len(decision.events)

    query = select(cases).where(
        cases.c.status.in_([status.value for status in domain.DEADLINES_RUNNING]),
        cases.c.handling_deadline_provisional | cases.c.dispatch_deadline_provisional,
    )
    return await recompute_rows(ctx, query, cases.c.id, recompute)


# --- helpers ---------------------------------------------------------------------------------


async def _command(ctx: ServiceContext, case_id: UUID, decide: Callable[[CaseState], Decision]) -> Row:
    """A command on one case: lock it, decide, save; the case as it is now."""
    async with ctx.store.transaction() as tx:
        case = CaseState.of(await CASES.get(tx, case_id, for_update=True))
        await save(ctx, tx, case_id, decide(case))
        return await CASES.get(tx, case_id)


async def _react(
    ctx: ServiceContext, tx: Transaction, event: Event, decide: Callable[[CaseState], Decision | None]
) -> None:
    """A reaction on one case; a case dispatch never timed (closed on the spot) is left alone."""
    case = await _case(tx, event)
    if case is None:
        return
    decision = decide(case)
    if decision is not None:
        await save(ctx, tx, case.id, decision)


async def _case(tx: Transaction, event: Event) -> CaseState | None:
    row = await CASES.find(tx, UUID(event.subject))
    return None if row is None else CaseState.of(row)


async def save(
    ctx: ServiceContext, tx: Transaction, case_id: UUID, decision: Decision, *, at: datetime | None = None
) -> None:
    """Write a decision on a case in the caller's transaction: its row changes, and its events
    (stamped ``at`` when given, see ``ServiceContext.event``)."""
    if decision.changes:
        await CASES.update(tx, case_id, **decision.changes)
    for payload in decision.events:
        tx.emit(ctx.event(payload, case_id, at=at))


def _decide_dispatch(ctx: ServiceContext, case: CaseState, command: Dispatch) -> Decision:
    """A dispatch decided: ``CalendarDataMissing`` (a 503 naming the year) when its deadline
    needs a year the calendar cannot serve, never a wrong deadline."""
    return domain.decide_dispatch(case, command, ctx.calendar, ctx.city.category(case.category_code))


async def _save_dispatch(
    ctx: ServiceContext, tx: Transaction, case: CaseState, command: Dispatch, decision: Decision
) -> None:
    """Save a dispatch: the case row, its new attempt, and ``case.dispatched`` stamped with the
    instant the rows hold."""
    await save(ctx, tx, case.id, decision, at=command.at)
    await _INSERT_ASSIGNMENT.run(
        tx.connection,
        {
            "case_id": case.id,
            "attempt": decision.changes["attempt"],
            "department_id": command.department_id,
            "dispatched_at": command.at,
        },
    )
