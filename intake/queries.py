"""What intake's API reads, and who may see what: staff see every report and case; an inspector
the reports it sent or must verify and the cases in its cells; a department its department's cases;
a system account (hotline, video) only the reports and cases it sent. Nobody but staff reads a
citizen's public report.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Uuid, false, literal, select, true, tuple_
from sqlalchemy.engine import RowMapping

from intake.domain import CaseStatus, ReportStatus
from intake.models import cases, reports, timeline
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.errors import InvalidInput, NotFound, OutOfScope
from shared.db.engine import UTCDateTime
from shared.db.rows import Rows
from shared.events.catalogue import ReportSource
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


@dataclass(frozen=True)
class CasePosition:
    """Where a page of a search ended, newest first: the last case's filing time and id. Given
    back, the next page starts after it, however many cases were filed meanwhile."""

    filed_at: datetime
    case_id: UUID

    def token(self) -> str:
        """The position as an opaque token for a URL."""
        return base64.urlsafe_b64encode(f"{self.filed_at.isoformat()}|{self.case_id}".encode()).decode().rstrip("=")

    @classmethod
    def of_token(cls, token: str) -> CasePosition:
        """The position a ``token`` gives; ``InvalidInput`` for one this service did not make."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            filed_at, case_id = text.split("|")
            position = cls(datetime.fromisoformat(filed_at), UUID(case_id))
        except (ValueError, binascii.Error):
            raise InvalidInput("not a position a page of cases ended at", {"after": token}) from None
        if position.filed_at.tzinfo is None:
            raise InvalidInput("not a position a page of cases ended at", {"after": token})
        return position


def _visible_to(city: City, caller: Principal) -> ColumnElement[bool]:
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
        return cases.c.id.in_(select(reports.c.id).where(reports.c.reporter_id == caller.username))
    return false()


async def search_cases(
    ctx: ServiceContext, caller: Principal, search: CaseSearch, after: CasePosition | None, limit: int
) -> tuple[Sequence[RowMapping], CasePosition | None]:
    """Up to ``limit`` case-file rows the caller may see that match ``search``, newest filed
    first (ties by id), after ``after``; and the position to ask for the next page from, None
    on the last page."""
    query = select(cases).where(_visible_to(ctx.city, caller), *search.conditions())
    if after is not None:
        keyset = tuple_(literal(after.filed_at, UTCDateTime()), literal(after.case_id, Uuid()))
        query = query.where(tuple_(cases.c.filed_at, cases.c.id) < keyset)
    rows = await _all(ctx, query.order_by(cases.c.filed_at.desc(), cases.c.id.desc()).limit(limit + 1))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], CasePosition(last["filed_at"], last["id"])


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
