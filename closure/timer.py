"""The persisted check timer: check deadlines live in the cases table, so a restart loses none.

Every tick reports each open check task whose deadline has passed unanswered, once, as
``case.deadline_missed`` (kind ``check``): a check is due when it is answered or when its limit
passes, so the on-time check rate sees time passing without waiting for the inspector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from closure import handlers
from closure.domain import ClosureStatus
from closure.models import cases
from shared.service.context import ServiceContext
from shared.service.timer import Timer, run_timer


async def report_missed_checks(ctx: ServiceContext, batch: int = 500) -> int:
    """Emit ``case.deadline_missed`` (kind ``check``) for every open check task whose deadline has
    passed unanswered; the number reported."""
    now = ctx.clock.now()
    async with ctx.store.transaction() as tx:
        query = unreported_missed_checks(now, batch)
        if tx.on_postgresql:
            # Replicas split the work; an inspector answering holds the row, and is not reported.
            query = query.with_for_update(skip_locked=True)
        due = (await tx.connection.execute(query)).mappings().all()
        for row in due:
            await handlers.report_missed_check(ctx, tx, row, now)
        return len(due)


def unreported_missed_checks(now: datetime, batch: int) -> Select[Any]:
    """The open check tasks whose deadline passed before ``now``, not reported yet, earliest
    deadline first (the index ``ix_closure_check_timer`` serves exactly this; the rule is
    ``domain.is_check_missed``)."""
    return select(cases).where(*missed_unreported(now)).order_by(cases.c.check_deadline).limit(batch)


def missed_unreported(now: datetime) -> list[ColumnElement[bool]]:
    """The timer's rule: the check is open, its deadline passed before ``now``, not reported yet."""
    return [
        cases.c.status == ClosureStatus.CHECKING.value,
        cases.c.check_missed_at.is_(None),
        cases.c.check_deadline < now,
    ]


CHECK_TIMER = Timer("check", cases, cases.c.check_deadline, missed_unreported)


async def run_check_timer(ctx: ServiceContext) -> None:
    """Report missed checks until none is left, then wait ``timer_interval_seconds``; a failed
    tick is logged and retried at the next one."""
    await run_timer("check timer", lambda: report_missed_checks(ctx), ctx.settings.timer_interval_seconds)
