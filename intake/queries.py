"""What intake's API reads, and who may see what: staff see every report and case; an inspector
the reports it sent or must verify and the cases in its cells; a department its department's cases;
a system account (hotline, video) only the reports and cases it sent. Nobody but staff reads a
citizen's public report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping

from intake.domain import ReportStatus
from intake.models import cases, reports, timeline
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.errors import NotFound, OutOfScope
from shared.db.rows import Rows
from shared.service.context import ServiceContext

STAFF = (Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD)
# Accounts of other systems: their reports carry the account's username as the reporter.
SYSTEMS = (Role.HOTLINE, Role.VIDEO)
REPORTS = Rows(reports, "report")


def is_staff(caller: Principal) -> bool:
    """The command center's staff, who see every report and case."""
    return caller.role in STAFF


def reporter_of(caller: Principal) -> str | None:
    """The reporter id the caller's own reports carry: an inspector's id, a system's username;
    None for everyone else (staff and departments send no reports, citizens have no account)."""
    if caller.role is Role.INSPECTOR:
        return caller.inspector_id
    if caller.role in SYSTEMS:
        return caller.username
    return None


def may_see_report(caller: Principal, report: Mapping[Any, Any]) -> bool:
    """Staff see every report; an inspector the reports it sent or must verify; a system account
    the reports it sent. A public report has no reporter, so only staff see it."""
    if is_staff(caller):
        return True
    own = reporter_of(caller)
    if own is not None and report["reporter_id"] == own:
        return True
    return caller.role is Role.INSPECTOR and own is not None and report.get("verifier_id") == own


def ensure_may_see_case(city: City, caller: Principal, case: Mapping[Any, Any]) -> None:
    """Staff see every case; a department its own; an inspector those in its cells; a system
    account those it reported (``case["reporter_id"]``); nobody else any (``OutOfScope``)."""
    if is_staff(caller):
        return
    if caller.role is Role.DEPARTMENT:
        if caller.department_id is None or case["department_id"] != caller.department_id:
            raise OutOfScope("this case is not your department's")
        return
    if caller.role is Role.INSPECTOR:
        if city.inspector_for(case["cell_id"]).id != caller.inspector_id:
            raise OutOfScope("this case is not in your cells")
        return
    if caller.role in SYSTEMS and case["reporter_id"] == caller.username:
        return
    raise OutOfScope("this case is not one you reported")


async def verification_tasks(ctx: ServiceContext, inspector: Principal) -> Sequence[RowMapping]:
    """The inspector's open verification tasks, oldest first."""
    return await _all(
        ctx,
        select(reports)
        .where(reports.c.verifier_id == inspector.inspector_id, reports.c.status == ReportStatus.VERIFYING)
        .order_by(reports.c.received_at),
    )


async def reports_by_status(ctx: ServiceContext, status: ReportStatus, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` reports in ``status``, oldest first (the operator's work queue)."""
    return await _all(
        ctx, select(reports).where(reports.c.status == status).order_by(reports.c.received_at).limit(limit)
    )


async def report(ctx: ServiceContext, report_id: UUID) -> RowMapping:
    """One report; ``NotFound`` when there is none."""
    row = await _first(ctx, select(reports).where(reports.c.id == report_id))
    if row is None:
        raise NotFound(f"no report {report_id}")
    return row


async def visible_report(ctx: ServiceContext, report_id: UUID, caller: Principal) -> RowMapping:
    """One report the caller may see; another's is ``NotFound``, as if there were none."""
    row = await report(ctx, report_id)
    if not may_see_report(caller, row):
        raise NotFound(f"no report {report_id}")
    return row


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` reports with ids after ``after``, in id order (a page of the export)."""
    return await REPORTS.page(ctx.store.engine, after, limit)


async def visible_case(ctx: ServiceContext, case_id: UUID, caller: Principal) -> RowMapping:
    """The case file's row of a case the caller may see: ``NotFound``, or ``OutOfScope``."""
    # The case keeps the report's id, so the report says who sent it.
    query = select(cases, reports.c.reporter_id).join(reports, reports.c.id == cases.c.id).where(cases.c.id == case_id)
    row = await _first(ctx, query)
    if row is None:
        raise NotFound(f"no case {case_id}")
    ensure_may_see_case(ctx.city, caller, row)
    return row


async def visible_timeline(ctx: ServiceContext, case_id: UUID, caller: Principal) -> Sequence[RowMapping]:
    """Every step of a case in the order the steps happened. Staff also see the steps of reports
    that never became cases (rejected, merged); others see the timeline of a case they may see."""
    if is_staff(caller):
        await report(ctx, case_id)
    else:
        await visible_case(ctx, case_id, caller)
    return await _all(
        ctx, select(timeline).where(timeline.c.case_id == case_id).order_by(timeline.c.at, timeline.c.seq)
    )


async def _all(ctx: ServiceContext, query: Select[Any]) -> Sequence[RowMapping]:
    async with ctx.store.engine.connect() as connection:
        rows: Sequence[RowMapping] = (await connection.execute(query)).mappings().all()
    return rows


async def _first(ctx: ServiceContext, query: Select[Any]) -> RowMapping | None:
    async with ctx.store.engine.connect() as connection:
        row: RowMapping | None = (await connection.execute(query)).mappings().first()
    return row
