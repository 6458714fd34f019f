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
from shared.service.context import ServiceContext


async def check_tasks(ctx: ServiceContext, inspector: Principal) -> Sequence[RowMapping]:
    """The inspector's open check tasks (核查), nearest check deadline first."""
    query = (
        select(cases)
        .where(cases.c.inspector_id == inspector.inspector_id, cases.c.status == ClosureStatus.CHECKING)
        .order_by(cases.c.check_deadline)
    )
    async with ctx.store.engine.connect() as connection:
        rows: Sequence[RowMapping] = (await connection.execute(query)).mappings().all()
    return rows


async def get_case(ctx: ServiceContext, case_id: UUID) -> RowMapping:
    """Closure's view of one case; ``NotFound`` when it has none."""
    return await CASES.read(ctx.store.engine, case_id)


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` cases with ids after ``after``, in id order (a page of the export)."""
    return await CASES.page(ctx.store.engine, after, limit)
