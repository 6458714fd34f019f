"""The persisted deadline timer: deadlines live in the cases table, so a restart loses none.

Every tick reports each open case whose handling deadline has passed, once, as
``case.deadline_missed`` (with a first supervision notice), so the stream sees time passing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from dispatch import domain
from dispatch.domain import CaseState
from dispatch.handlers import save
from dispatch.models import cases
from shared.service.context import ServiceContext
from shared.service.timer import Timer, run_timer


async def report_missed_deadlines(ctx: ServiceContext, batch: int = 500) -> int:
    """Emit ``case.deadline_missed`` and a first supervision notice for every open case whose
    handling deadline has passed; the number reported. Suspended cases are not timed.
    """
    now = ctx.clock.now()
    async with ctx.store.transaction() as tx:
        query = unreported_missed_deadlines(now, batch)
        if tx.on_postgresql:
            query = query.with_for_update(skip_locked=True)  # replicas split the work
        due = (await tx.connection.execute(query)).mappings().all()
        for row in due:
            await save(ctx, tx, row["id"], domain.decide_deadline_missed(CaseState.of(row), now))
        return len(due)


def unreported_missed_deadlines(now: datetime, batch: int) -> Select[Any]:
    """The cases whose clock runs and whose deadline passed before ``now``, not reported yet,
    earliest deadline first (the index ``ix_dispatch_cases_timer`` serves exactly this)."""
    return select(cases).where(*missed_unreported(now)).order_by(cases.c.handling_deadline).limit(batch)


def missed_unreported(now: datetime) -> list[ColumnElement[bool]]:
    """The timer's rule: the case's clock runs, its deadline passed before ``now``, not reported
    yet. A case closed at its deadline's very instant is closed on time (closure's rule), so that
    instant is not yet a miss, as with closure's check deadlines."""
    return [
        cases.c.status.in_([s.value for s in domain.CLOCK_RUNNING]),
        cases.c.deadline_missed_at.is_(None),
        cases.c.handling_deadline < now,
    ]


DEADLINE_TIMER = Timer("deadline", cases, cases.c.handling_deadline, missed_unreported)


async def run_deadline_timer(ctx: ServiceContext) -> None:
    """Report missed deadlines until none is left, then wait ``timer_interval_seconds``; a failed
    tick is logged and retried at the next one."""
    await run_timer("deadline timer", lambda: report_missed_deadlines(ctx), ctx.settings.timer_interval_seconds)
