"""Handling's reads: a department's inbox, one of its cases, and the export page; and the one rule
of who sees what here — a department sees its own cases only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from uuid import UUID

from sqlalchemy import select

from handling.domain import IN_INBOX, TaskStatus
from handling.models import CASES, cases
from shared.core.auth import Principal
from shared.core.errors import NotFound
from shared.db.driver import Row
from shared.db.keyset import Keyset, Page, Position
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

# The inbox, nearest deadline first. Every dispatched case has a deadline, but the column allows
# none: such a case comes last on both backends (alone, SQLite sorts NULL first, PostgreSQL last)
# and stays reachable from page to page.
NEAREST_DEADLINE_FIRST = Keyset(cases.c.handling_deadline, cases.c.id)


async def inbox(
    ctx: ServiceContext,
    user: Principal,
    statuses: Collection[TaskStatus] | None,
    limit: int,
    after: Position | None = None,
) -> Page:
    """A page of the department's cases in ``statuses`` (by default those it still has to act
    on), nearest deadline first.
    """
    if user.department_id is None:
        return Page([], None)  # an account of no department holds no case (never ``department_id IS NULL``)
    wanted = [status.value for status in (statuses or IN_INBOX)]
    query = select(cases).where(cases.c.department_id == user.department_id, cases.c.status.in_(wanted))
    return await NEAREST_DEADLINE_FIRST.read(ctx.store.engine, query, after, limit)


async def own_case(ctx: ServiceContext, user: Principal, case_id: UUID) -> Row:
    """One of the department's cases; ``NotFound`` for any other."""
    async with ctx.store.engine.connect() as connection:
        row = (await connection.execute(select(cases).where(cases.c.id == case_id))).mappings().first()
    return _seen_by(user, case_id, row)


async def own_case_for_update(tx: Transaction, user: Principal, case_id: UUID) -> Row:
    """One of the department's cases, locked until ``tx`` ends, for an action on it."""
    return _seen_by(user, case_id, await CASES.find(tx, case_id, for_update=True))


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[Row]:
    """Up to ``limit`` cases with ids after ``after``, in id order (a page of the export)."""
    return await CASES.page(ctx.store.engine, after, limit)


def _seen_by(user: Principal, case_id: UUID, row: Row | None) -> Row:
    # Another department's case is reported as missing, not as forbidden: its existence is not
    # this department's business either.
    if row is None or row["department_id"] is None or row["department_id"] != user.department_id:
        raise NotFound(f"no case {case_id} in your department's inbox")
    return row
