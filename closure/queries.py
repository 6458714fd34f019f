"""Closure's reads for its API, and who may see what: an inspector sees the check tasks of its
own cells (a check task belongs to the cell's inspector); staff see any case; the command center
exports them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from closure.domain import ClosureStatus
from closure.models import CASES, cases
from shared.core.auth import Principal
from shared.db.keyset import Keyset, Page, Position
from shared.service.context import ServiceContext

# Check tasks, nearest check deadline first; one without a deadline comes last.
NEAREST_CHECK_DEADLINE_FIRST = Keyset(cases.c.check_deadline, cases.c.id)


async def check_tasks(ctx: ServiceContext, inspector: Principal, limit: int, after: Position | None = None) -> Page:
    """A page of the inspector's open check tasks (核查), nearest check deadline first."""
    query = select(cases).where(
        cases.c.inspector_id == inspector.inspector_id, cases.c.status == ClosureStatus.CHECKING
    )
    return await NEAREST_CHECK_DEADLINE_FIRST.read(ctx.store.engine, query, after, limit)


async def get_case(ctx: ServiceContext, case_id: UUID) -> RowMapping:
    """Closure's view of one case; ``NotFound`` when it has none."""
    return await CASES.read(ctx.store.engine, case_id)


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` cases with ids after ``after``, in id order (a page of the export)."""
    return await CASES.page(ctx.store.engine, after, limit)
