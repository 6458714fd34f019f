"""Dispatch's reads for the API: the queues, one case, and the export for the batch recount.

Dispatch's views are the command center's: every caller allowed in by its route sees every case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping

from dispatch.domain import DispatchStatus
from dispatch.models import CASES, assignments, cases
from shared.db.keyset import Keyset, Page, Position
from shared.service.context import ServiceContext

ASSIGNMENT_FIELDS = ("attempt", "department_id", "dispatched_at", "returned_at")
# The queues wait oldest filed first; the extension requests by the deadline they would move
# (a case without one, which no pending request should have, comes last rather than vanish).
OLDEST_FILED_FIRST = Keyset(cases.c.filed_at, cases.c.id)
EARLIEST_DEADLINE_FIRST = Keyset(cases.c.handling_deadline, cases.c.id)


async def queue(ctx: ServiceContext, status: DispatchStatus, limit: int, after: Position | None = None) -> Page:
    """A page of the cases in ``status`` (the coordination queue, the returned cases...), oldest
    filed first."""
    return await OLDEST_FILED_FIRST.read(ctx.store.engine, select(cases).where(cases.c.status == status), after, limit)


async def pending_extensions(ctx: ServiceContext, limit: int, after: Position | None = None) -> Page:
    """A page of the cases with an extension request waiting for the shift lead, earliest
    deadline first."""
    query = select(cases).where(cases.c.extension_deadline.is_not(None))
    return await EARLIEST_DEADLINE_FIRST.read(ctx.store.engine, query, after, limit)


async def get_case(ctx: ServiceContext, case_id: UUID) -> RowMapping:
    """Dispatch's view of a case; ``NotFound`` (404) when dispatch has none."""
    return await CASES.read(ctx.store.engine, case_id)


async def export_page(
    ctx: ServiceContext, after: UUID | None, limit: int
) -> list[tuple[RowMapping, list[dict[str, Any]]]]:
    """Up to ``limit`` cases with ids after ``after``, in id order, each with its dispatch attempts
    in order (a page of the export).
    """
    case = CASES.page_query(after, limit).subquery("page")
    attempt_columns = [assignments.c[name].label(f"assignment_{name}") for name in ASSIGNMENT_FIELDS]
    # One statement, so a case and its attempts come from one snapshot.
    query = (
        select(case, *attempt_columns)
        .select_from(case.outerjoin(assignments, assignments.c.case_id == case.c.id))
        .order_by(case.c.id, assignments.c.attempt)
    )
    result: list[tuple[RowMapping, list[dict[str, Any]]]] = []
    for row in await _read(ctx, query):
        if not result or result[-1][0]["id"] != row["id"]:
            result.append((row, []))
        if row["assignment_attempt"] is not None:
            result[-1][1].append({name: row[f"assignment_{name}"] for name in ASSIGNMENT_FIELDS})
    return result


async def _read(ctx: ServiceContext, query: Select[Any]) -> Sequence[RowMapping]:
    async with ctx.store.engine.connect() as connection:
        rows: Sequence[RowMapping] = (await connection.execute(query)).mappings().all()
    return rows
