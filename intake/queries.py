"""What intake's API reads, and who may see what: staff see every report and case; an inspector
the reports it sent or must verify and the cases in its cells; a department its department's cases;
a system account (hotline, video) only the reports and cases it sent (a hotline's account, those
sent as its hotline too). Nobody but staff reads a
citizen's public report.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, false, select, true
from sqlalchemy.engine import RowMapping

from intake.domain import CaseStatus, ReportStatus
from intake.models import callbacks, cases, reports, timeline
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.errors import InvalidInput, NotFound, OutOfScope
from shared.db.keyset import Keyset, Page, Position
from shared.db.rows import Rows
from shared.events.catalogue import ReportSource
from shared.integration.endpoints import Integrations
from shared.service.context import ServiceContext

STAFF = (Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD)
# Accounts of other systems: their reports carry the account's username as the reporter (or the
# id of the hotline the city's integrations.yaml says the account pushes as).
SYSTEMS = (Role.HOTLINE, Role.VIDEO)
REPORTS = Rows(reports, "report")
# The work lists of reports, oldest received first; the case file, newest filed first.
OLDEST_RECEIVED_FIRST = Keyset(reports.c.received_at, reports.c.id)
NEWEST_FILED_FIRST = Keyset(cases.c.filed_at, cases.c.id, descending=True)


def is_staff(caller: Principal) -> bool:
    """The command center's staff, who see every report and case."""
    return caller.role in STAFF


def reporters_of(caller: Principal, integrations: Integrations) -> frozenset[str]:
    """The reporter ids the caller's own reports carry: an inspector's id; a system's username,
    and for the account of a configured hotline also the hotline's id (what it sends through the
    bearer route and what the hotline signs itself are one hotline's); none for everyone else
    (staff and departments send no reports, citizens have no account)."""
    if caller.role is Role.INSPECTOR:
        return frozenset() if caller.inspector_id is None else frozenset({caller.inspector_id})
    if caller.role not in SYSTEMS:
        return frozenset()
    hotline = integrations.hotline_of_account(caller.username) if caller.role is Role.HOTLINE else None
    return frozenset({caller.username} if hotline is None else {caller.username, hotline.id})


def may_see_report(caller: Principal, report: Mapping[Any, Any], integrations: Integrations) -> bool:
    """Staff see every report; an inspector the reports it sent or must verify; a system account
    the reports it sent. A public report has no reporter, so only staff see it."""
    if is_staff(caller):
        return True
    own = reporters_of(caller, integrations)
    if report["reporter_id"] in own:
        return True
    return caller.role is Role.INSPECTOR and report.get("verifier_id") in own


def ensure_may_see_case(city: City, caller: Principal, case: Mapping[Any, Any], integrations: Integrations) -> None:
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
    if caller.role in SYSTEMS and case["reporter_id"] in reporters_of(caller, integrations):
        return
    raise OutOfScope("this case is not one you reported")


async def verification_tasks(
    ctx: ServiceContext, inspector: Principal, limit: int, after: Position | None = None
) -> Page:
    """A page of the inspector's open verification tasks, oldest first."""
    query = select(reports).where(
        reports.c.verifier_id == inspector.inspector_id, reports.c.status == ReportStatus.VERIFYING
    )
    return await OLDEST_RECEIVED_FIRST.read(ctx.store.engine, query, after, limit)


async def reports_by_status(
    ctx: ServiceContext, status: ReportStatus, limit: int, after: Position | None = None
) -> Page:
    """A page of the reports in ``status``, oldest first (the operator's work queue)."""
    query = select(reports).where(reports.c.status == status)
    return await OLDEST_RECEIVED_FIRST.read(ctx.store.engine, query, after, limit)


async def report(ctx: ServiceContext, report_id: UUID) -> RowMapping:
    """One report; ``NotFound`` when there is none."""
    row = await _first(ctx, select(reports).where(reports.c.id == report_id))
    if row is None:
        raise NotFound(f"no report {report_id}")
    return row


async def visible_report(ctx: ServiceContext, report_id: UUID, caller: Principal) -> RowMapping:
    """One report the caller may see; another's is ``NotFound``, as if there were none."""
    row = await report(ctx, report_id)
    if not may_see_report(caller, row, ctx.integrations):
        raise NotFound(f"no report {report_id}")
    return row


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` reports with ids after ``after``, in id order (a page of the export), each
    with the latest verdict of the hotline's callbacks on its case and when it came (``None``
    without one): ``callback_verdict``, ``callback_at``."""
    rows = await REPORTS.page(ctx.store.engine, after, limit)
    latest: dict[UUID, dict[str, Any]] = {}
    if rows:
        query = (
            select(callbacks.c.case_id, callbacks.c.verdict, callbacks.c.received_at)
            .where(callbacks.c.case_id.in_([row["id"] for row in rows]))
            .order_by(callbacks.c.received_at, callbacks.c.id)
        )
        for callback in await _all(ctx, query):
            latest[callback["case_id"]] = {
                "callback_verdict": callback["verdict"],
                "callback_at": callback["received_at"],
            }
    none = {"callback_verdict": None, "callback_at": None}
    return [{**row, **latest.get(row["id"], none)} for row in rows]


async def visible_case(ctx: ServiceContext, case_id: UUID, caller: Principal) -> RowMapping:
    """The case file's row of a case the caller may see: ``NotFound``, or ``OutOfScope``."""
    # The case keeps the report's id, so the report says who sent it.
    query = select(cases, reports.c.reporter_id).join(reports, reports.c.id == cases.c.id).where(cases.c.id == case_id)
    row = await _first(ctx, query)
    if row is None:
        raise NotFound(f"no case {case_id}")
    ensure_may_see_case(ctx.city, caller, row, ctx.integrations)
    return row


@dataclass(frozen=True)
class CaseSearch:
    """What a search of the case file asks for; each field given narrows the answer."""

    number: str | None = None
    """A case number, or its beginning (``2026-11-00012``)."""
    statuses: frozenset[CaseStatus] = frozenset()
    category_codes: frozenset[str] = frozenset()
    district_id: str | None = None
    department_id: str | None = None
    source: ReportSource | None = None
    filed_from: datetime | None = None
    """Filed at or after this instant."""
    filed_before: datetime | None = None
    """Filed before this instant."""

    @classmethod
    def of(
        cls,
        city: City,
        *,
        number: str | None = None,
        statuses: Collection[CaseStatus] = (),
        category: str | None = None,
        district_id: str | None = None,
        department_id: str | None = None,
        source: ReportSource | None = None,
        filed_from: date | None = None,
        filed_to: date | None = None,
    ) -> CaseSearch:
        """A search as a request words it, checked against the city: ``category`` is a
        category's code or a major class's (every category of the class); the days from
        ``filed_from`` to ``filed_to`` (both included) are the city's. ``InvalidInput`` for a
        category, district or department the city does not have, or days the wrong way round."""
        if filed_from is not None and filed_to is not None and filed_to < filed_from:
            raise InvalidInput("filed_to is before filed_from", {"filed_from": filed_from, "filed_to": filed_to})
        _ensure_known(district_id, city.district, "district")
        _ensure_known(department_id, city.department, "department")
        zone = ZoneInfo(city.timezone)
        return cls(
            number=number,
            statuses=frozenset(statuses),
            category_codes=_category_codes(city, category),
            district_id=district_id,
            department_id=department_id,
            source=source,
            filed_from=None if filed_from is None else datetime.combine(filed_from, time(), zone),
            filed_before=None if filed_to is None else datetime.combine(filed_to + timedelta(days=1), time(), zone),
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        """The search as conditions on the case file's rows."""
        found: list[ColumnElement[bool]] = []
        if self.number is not None:
            # The whole pattern as one value: PostgreSQL's planner sees its fixed beginning and
            # walks the number index from there.
            found.append(cases.c.case_number.like(_like_prefix(self.number), escape="\\"))
        if self.statuses:
            found.append(cases.c.status.in_(sorted(self.statuses)))
        if self.category_codes:
            found.append(cases.c.category_code.in_(sorted(self.category_codes)))
        for column, value in (
            (cases.c.district_id, self.district_id),
            (cases.c.department_id, self.department_id),
            (cases.c.source, self.source),
        ):
            if value is not None:
                found.append(column == value)
        if self.filed_from is not None:
            found.append(cases.c.filed_at >= self.filed_from)
        if self.filed_before is not None:
            found.append(cases.c.filed_at < self.filed_before)
        return found


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _ensure_known(scope_id: str | None, lookup: Any, what: str) -> None:
    try:
        if scope_id is not None:
            lookup(scope_id)
    except KeyError:
        raise InvalidInput(f"the city has no {what} {scope_id!r}", {what: scope_id}) from None


def _category_codes(city: City, category: str | None) -> frozenset[str]:
    if category is None:
        return frozenset()
    codes = frozenset(c.code for c in city.categories if category in (c.code, c.major_code))
    if not codes:
        raise InvalidInput(f"the city has no category or class {category!r}", {"category": category})
    return codes


def _visible_to(city: City, caller: Principal, integrations: Integrations) -> ColumnElement[bool]:
    """The cases ``caller`` may see, as ``ensure_may_see_case`` decides for one case."""
    if is_staff(caller):
        return true()
    if caller.role is Role.DEPARTMENT:
        return false() if caller.department_id is None else cases.c.department_id == caller.department_id
    if caller.role is Role.INSPECTOR:
        try:
            cells = city.inspector(caller.inspector_id or "").cell_ids
        except KeyError:
            return false()
        return cases.c.cell_id.in_(cells)
    if caller.role in SYSTEMS:
        own = sorted(reporters_of(caller, integrations))
        return cases.c.id.in_(select(reports.c.id).where(reports.c.reporter_id.in_(own)))
    return false()


async def search_cases(
    ctx: ServiceContext, caller: Principal, search: CaseSearch, limit: int, after: Position | None = None
) -> Page:
    """A page of the case-file rows the caller may see that match ``search``, newest filed
    first (ties by id)."""
    query = select(cases).where(_visible_to(ctx.city, caller, ctx.integrations), *search.conditions())
    return await NEWEST_FILED_FIRST.read(ctx.store.engine, query, after, limit)


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
